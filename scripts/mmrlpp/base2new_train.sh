#!/usr/bin/env bash
# MMRL++, base-to-new stage 1 (TASK B2N): train on the base classes of DATASET (16 shots); its final test is the base accuracy (fused logits).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/mmrlpp/base2new_train.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16; vit_b16_imagenet on ImageNet, _cross_datasets for xd, _few_shot for few-shot).
SCRIPT_NAME="scripts/mmrlpp/base2new_train.sh" HOST=MMRLpp exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_train "$@"
