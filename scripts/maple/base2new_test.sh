#!/usr/bin/env bash
# MaPLe, base-to-new: evaluate the base2new_train checkpoint on the new classes of DATASET.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/maple/base2new_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep5_batch4_2ctx; the _cross_datasets config for xd).
SCRIPT_NAME="scripts/maple/base2new_test.sh" HOST=MaPLe exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_test "$@"
