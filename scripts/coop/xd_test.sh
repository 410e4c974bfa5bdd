#!/usr/bin/env bash
# CoOp, cross-dataset / domain generalisation: evaluate the xd_train checkpoint on DATASET (all classes).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/coop/xd_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_ctxv1; vit_b16_ep50_ctxv1 on ImageNet).
SCRIPT_NAME="scripts/coop/xd_test.sh" HOST=CoOp exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_test "$@"
