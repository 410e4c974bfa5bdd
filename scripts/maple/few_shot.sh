#!/usr/bin/env bash
# MaPLe, few-shot: train on all classes of DATASET with SHOTS shots (default 16); its final test is the result.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/maple/few_shot.sh DATASET SEED [SHOTS] [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep5_batch4_2ctx; the _cross_datasets config for xd).
SCRIPT_NAME="scripts/maple/few_shot.sh" HOST=MaPLe exec bash "$(dirname "$0")/../lib/benchmark.sh" host few_shot "$@"
