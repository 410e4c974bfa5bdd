#!/usr/bin/env bash
# The paper's two weight sweeps for one host (tools/paper_experiments.py): ω_b in {0, 0.1, 0.2, 0.3, 0.5, 1.0}
# (base accuracy; in parallel mode ω_b scales training, so one DPC training per value) and ω_n in {0, 0.01,
# 0.02, 0.05, 0.1, 0.2} (new accuracy; evaluation-only: evaluations of the plain DPC run), on the 11 base-to-new
# datasets x seeds 1 2 3.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_weight_sweeps.sh HOST [--dry-run] [--executor E]
#       [-- PIPELINE ARGS]
# e.g. bash scripts/reproduce_weight_sweeps.sh CoOp --dry-run   # the runs, their counts and estimated cost
# Finished runs are skipped and unfinished ones resumed, so the same command continues interrupted sweeps.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_weight_sweeps.sh "$@"
run_pipeline --host "$HOST" --mode base2new --seeds 1 2 3 --shots 16 --variants weight-sweeps
