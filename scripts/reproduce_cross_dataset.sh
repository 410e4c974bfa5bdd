#!/usr/bin/env bash
# The cross-dataset table: train on ImageNet (all classes, 16 shots), evaluate on the other 10 datasets; seeds 1 2 3, the host
# and DPC over it, then the table.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_cross_dataset.sh HOST [--dry-run] [-- PIPELINE ARGS]
# Finished runs are skipped and unfinished ones resumed, so the same command continues an interrupted table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_cross_dataset.sh "$@"
run_pipeline --host "$HOST" --mode cross-dataset --seeds 1 2 3
