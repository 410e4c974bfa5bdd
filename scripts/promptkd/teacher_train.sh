#!/usr/bin/env bash
# PromptKD, its teacher for base-to-new: PromptSRC on ViT-L/14, base classes of DATASET (16 shots). One teacher serves every seed (it is trained with seed 1, whatever SEED says).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptkd/teacher_train.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the teacher's config (PromptSRC vit_l14_c2_ep20_batch8_4+4ctx).
SCRIPT_NAME="scripts/promptkd/teacher_train.sh" HOST=PromptKD exec bash "$(dirname "$0")/../lib/benchmark.sh" teacher base2new_train "$@"
