#!/usr/bin/env bash
# PromptSRC, cross-dataset / domain generalisation: train on ImageNet, all classes, 16 shots.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptsrc/xd_train.sh SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch4_4+4ctx; _cross_datasets for xd, ..._ep50_..._few_shot for few-shot).
SCRIPT_NAME="scripts/promptsrc/xd_train.sh" HOST=PromptSRC exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_train "$@"
