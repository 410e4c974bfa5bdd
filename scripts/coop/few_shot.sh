#!/usr/bin/env bash
# CoOp, few-shot: train on all classes of DATASET with SHOTS shots (default 16); its final test is the result.
#   DATA=/path/to/datasets [OUTPUT=output] bash scripts/coop/few_shot.sh DATASET SEED [SHOTS] [--dry-run]
# CFG=<config name> replaces the default config (vit_b16_ctxv1; vit_b16_ep50_ctxv1 on ImageNet).
SCRIPT_NAME="scripts/coop/few_shot.sh" HOST=CoOp exec bash "$(dirname "$0")/../lib/benchmark.sh" host few_shot "$@"
