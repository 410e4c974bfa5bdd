#!/usr/bin/env bash
# PromptSRC, few-shot: train on all classes of DATASET with SHOTS shots (default 16); its final test is the result.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/promptsrc/few_shot.sh DATASET SEED [SHOTS] [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_c2_ep20_batch4_4+4ctx; _cross_datasets for xd, ..._ep50_..._few_shot for few-shot).
SCRIPT_NAME="scripts/promptsrc/few_shot.sh" HOST=PromptSRC exec bash "$(dirname "$0")/../lib/benchmark.sh" host few_shot "$@"
