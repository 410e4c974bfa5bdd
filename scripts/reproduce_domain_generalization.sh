#!/usr/bin/env bash
# The domain-generalisation table: train on ImageNet (all classes, 16 shots), evaluate on ImageNetV2, -Sketch, -A and -R; seeds 1 2 3, the host
# and DPC over it, then the table.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/reproduce_domain_generalization.sh HOST [--dry-run] [-- PIPELINE ARGS]
# Finished runs are skipped and unfinished ones resumed, so the same command continues an interrupted table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
reproduce_host_args scripts/reproduce_domain_generalization.sh "$@"
run_pipeline --host "$HOST" --mode dg --seeds 1 2 3
