#!/usr/bin/env bash
# DPC over a host, base-to-new: evaluate the DPC base2new_train checkpoint on the new classes of DATASET.
#   DATA=/path/to/datasets [OUTPUT=output] HOST=CoOp bash scripts/dpc/base2new_test.sh DATASET SEED [--dry-run]
#   or: bash scripts/dpc/base2new_test.sh --host CoOp DATASET SEED
# Needs the host's own run of the same step to have finished (scripts/<host>/base2new_train.sh).
# DPC_CFG=<config name> replaces configs/trainers/DPC/vit_b16_ep20_batch4.yaml.
SCRIPT_NAME="scripts/dpc/base2new_test.sh" exec bash "$(dirname "$0")/../lib/benchmark.sh" dpc base2new_test "$@"
