#!/usr/bin/env bash
# DPC over a host, cross-dataset / domain generalisation: train DPC on ImageNet (all classes, 16 shots) over the
# host's finished xd_train run.
#   DATA=/path/to/datasets [OUTPUT=output] HOST=CoOp bash scripts/dpc/xd_train.sh SEED [--dry-run]
#   or: bash scripts/dpc/xd_train.sh --host CoOp SEED
# Needs the host's own run of the same step to have finished (scripts/<host>/xd_train.sh).
# DPC_CFG=<config name> replaces configs/trainers/DPC/vit_b16_ep20_batch4.yaml.
SCRIPT_NAME="scripts/dpc/xd_train.sh" exec bash "$(dirname "$0")/../lib/benchmark.sh" dpc xd_train "$@"
