#!/usr/bin/env bash
# PromptKD, cross-dataset / domain generalisation: evaluate the xd_train student on DATASET (all classes).
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptkd/xd_test.sh DATASET SEED [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch8_4+4ctx; _kd200 for FGVCAircraft, Flowers102, DTD; _cross_datasets for xd).
SCRIPT_NAME="scripts/promptkd/xd_test.sh" HOST=PromptKD exec bash "$(dirname "$0")/../lib/benchmark.sh" host xd_test "$@"
