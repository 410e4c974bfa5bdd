#!/usr/bin/env bash
# MaPLe, cross-dataset / domain generalisation: train on ImageNet, all classes, 16 shots.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/maple/xd_train.sh SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep5_batch4_2ctx; the _cross_datasets config for xd).
SCRIPT_NAME="scripts/maple/xd_train.sh" HOST=MaPLe exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_train "$@"
