#!/usr/bin/env bash
# PromptKD, its teacher for cross-dataset / DG: PromptSRC on ViT-L/14, ImageNet, all classes (seed 1).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptkd/teacher_xd_train.sh SEED [--dry-run]
# CFG=<config name> replaces the teacher's config (PromptSRC vit_l14_c2_ep20_batch8_4+4ctx).
SCRIPT_NAME="scripts/promptkd/teacher_xd_train.sh" HOST=PromptKD exec bash "$(dirname "$0")/../lib/benchmark.sh" teacher xd_train "$@"
