#!/usr/bin/env bash
# CoOp, base-to-new: evaluate the base2new_train checkpoint on the new classes of DATASET.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/coop/base2new_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_ctxv1; vit_b16_ep50_ctxv1 on ImageNet).
SCRIPT_NAME="scripts/coop/base2new_test.sh" HOST=CoOp exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_test "$@"
