#!/usr/bin/env bash
# The paper's component ablation for one host: its six rows (the host alone, TS, TS+DHNO, TS+DHNO+WE, TS+WE+DE,
# DPC; tools/paper_experiments.py) on the 11 base-to-new datasets x seeds 1 2 3. Rows that train alike share one
# DPC training (four per dataset and seed: DHNO on/off x ω_b 1/0.2); ω_n is evaluation-only.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_ablation.sh HOST [--dry-run] [--executor E]
#       [-- PIPELINE ARGS]
# e.g. bash scripts/reproduce_ablation.sh CoOp --dry-run   # the runs, their counts and estimated cost
# Finished runs are skipped and unfinished ones resumed, so the same command continues an interrupted ablation.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_ablation.sh "$@"
run_pipeline --host "$HOST" --mode base2new --seeds 1 2 3 --shots 16 --variants ablation
