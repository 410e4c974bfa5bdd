#!/usr/bin/env bash
# MMRL, few-shot (TASK FS): train on all classes of DATASET with SHOTS shots (default 16); its final test is the result.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/mmrl/few_shot.sh DATASET SEED [SHOTS] [--dry-run]
# CFG=<config name> replaces the default config (vit_b16; vit_b16_imagenet on ImageNet, _cross_datasets for xd, _few_shot for few-shot).
SCRIPT_NAME="scripts/mmrl/few_shot.sh" HOST=MMRL exec bash "$(dirname "$0")/../lib/benchmark.sh" host few_shot "$@"
