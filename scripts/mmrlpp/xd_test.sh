#!/usr/bin/env bash
# MMRL++, cross-dataset / domain generalisation: evaluate the xd_train checkpoint on DATASET (all classes).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/mmrlpp/xd_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16; vit_b16_imagenet on ImageNet, _cross_datasets for xd, _few_shot for few-shot).
SCRIPT_NAME="scripts/mmrlpp/xd_test.sh" HOST=MMRLpp exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_test "$@"
