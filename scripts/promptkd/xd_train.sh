#!/usr/bin/env bash
# PromptKD, cross-dataset / domain generalisation: distil on ImageNet, all classes, from the ImageNet teacher (teacher_xd_train.sh).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptkd/xd_train.sh SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch8_4+4ctx; _kd200 for FGVCAircraft, Flowers102, DTD; _cross_datasets for xd).
SCRIPT_NAME="scripts/promptkd/xd_train.sh" HOST=PromptKD exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_train "$@"
