#!/usr/bin/env bash
# MMRL++, base-to-new: evaluate the base2new_train checkpoint on the new classes of DATASET (class-token logits).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/mmrlpp/base2new_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16; vit_b16_imagenet on ImageNet, _cross_datasets for xd, _few_shot for few-shot).
SCRIPT_NAME="scripts/mmrlpp/base2new_test.sh" HOST=MMRLpp exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_test "$@"
