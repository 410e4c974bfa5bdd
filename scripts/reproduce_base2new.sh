#!/usr/bin/env bash
# The paper's base-to-new table for one host: 11 datasets x seeds 1 2 3, all four stages (host on base, host
# on new, DPC on base, DPC on new), then the table beside the paper's numbers.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_base2new.sh HOST [--dry-run] [-- PIPELINE ARGS]
# e.g. bash scripts/reproduce_base2new.sh CoOp --dry-run      # the full list of train.py commands
# Finished runs are skipped and unfinished ones resumed, so the same command continues an interrupted table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_base2new.sh "$@"
run_pipeline --host "$HOST" --mode base2new --seeds 1 2 3 --shots 16
