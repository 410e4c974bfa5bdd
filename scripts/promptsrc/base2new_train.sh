#!/usr/bin/env bash
# PromptSRC, base-to-new stage 1: train on the base classes of DATASET (16 shots); its final test is the base accuracy.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptsrc/base2new_train.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch4_4+4ctx; _cross_datasets for xd, ..._ep50_..._few_shot for few-shot).
SCRIPT_NAME="scripts/promptsrc/base2new_train.sh" HOST=PromptSRC exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_train "$@"
