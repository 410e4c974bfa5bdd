#!/usr/bin/env bash
# DPC over a host, base-to-new stage 2: train DPC on the base classes of DATASET (16 shots) over the host's finished
# stage-1 run; its final test is the DPC base accuracy.
#   DATA=/path/to/datasets [OUTPUT=output] HOST=CoOp bash scripts/dpc/base2new_train.sh DATASET SEED [--dry-run]
#   or: bash scripts/dpc/base2new_train.sh --host CoOp DATASET SEED
# Needs the host's own run of the same step to have finished (scripts/<host>/base2new_train.sh).
# DPC_CFG=<config name> replaces configs/trainers/DPC/vit_b16_ep20_batch4.yaml.
SCRIPT_NAME="scripts/dpc/base2new_train.sh" exec bash "$(dirname "$0")/../lib/benchmark.sh" dpc base2new_train "$@"
