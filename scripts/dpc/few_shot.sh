#!/usr/bin/env bash
# DPC over a host, few-shot: train DPC on all classes of DATASET with SHOTS shots (default 16) over the host's
# finished few_shot run; its final test is the result.
#   DATA=/path/to/datasets [OUTPUT=output] HOST=CoOp bash scripts/dpc/few_shot.sh DATASET SEED [SHOTS] [--dry-run]
#   or: bash scripts/dpc/few_shot.sh --host CoOp DATASET SEED [SHOTS]
# Needs the host's own run of the same step to have finished (scripts/<host>/few_shot.sh).
# DPC_CFG=<config name> replaces configs/trainers/DPC/vit_b16_ep20_batch4.yaml.
SCRIPT_NAME="scripts/dpc/few_shot.sh" exec bash "$(dirname "$0")/../lib/benchmark.sh" dpc few_shot "$@"
