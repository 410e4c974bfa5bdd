#!/usr/bin/env bash
# MaPLe, base-to-new stage 1: train on the base classes of DATASET (16 shots); its final test is the base accuracy.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/maple/base2new_train.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep5_batch4_2ctx; the _cross_datasets config for xd).
SCRIPT_NAME="scripts/maple/base2new_train.sh" HOST=MaPLe exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_train "$@"
