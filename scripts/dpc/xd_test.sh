#!/usr/bin/env bash
# DPC over a host, cross-dataset / domain generalisation: evaluate the DPC xd_train checkpoint on DATASET (all classes).
#   DATA=/path/to/datasets [OUTPUT=output] HOST=CoOp bash scripts/dpc/xd_test.sh DATASET SEED [--dry-run]
#   or: bash scripts/dpc/xd_test.sh --host CoOp DATASET SEED
# Needs the host's own run of the same step to have finished (scripts/<host>/xd_train.sh).
# DPC_CFG=<config name> replaces configs/trainers/DPC/vit_b16_ep20_batch4.yaml.
SCRIPT_NAME="scripts/dpc/xd_test.sh" exec bash "$(dirname "$0")/../lib/benchmark.sh" dpc xd_test "$@"
