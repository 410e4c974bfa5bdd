#!/usr/bin/env bash
# The few-shot table: 11 datasets x 1 2 4 8 16 shots, all classes; seeds 1 2 3, the host
# and DPC over it, then the table.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_few_shot.sh HOST [--dry-run] [-- PIPELINE ARGS]
# Finished runs are skipped and unfinished ones resumed, so the same command continues an interrupted table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_few_shot.sh "$@"
run_pipeline --host "$HOST" --mode few-shot --seeds 1 2 3
