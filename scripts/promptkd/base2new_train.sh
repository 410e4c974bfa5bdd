#!/usr/bin/env bash
# PromptKD, base-to-new: distil from the teacher (teacher_train.sh) on the unlabeled images of all classes of DATASET; its final test is the base accuracy (best epoch on the base classes' validation images).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptkd/base2new_train.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch8_4+4ctx; _kd200 for FGVCAircraft, Flowers102, DTD; _cross_datasets for xd).
SCRIPT_NAME="scripts/promptkd/base2new_train.sh" HOST=PromptKD exec bash "$(dirname "$0")/../lib/benchmark.sh" host base2new_train "$@"
