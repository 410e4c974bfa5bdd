#!/usr/bin/env bash
# One benchmark step for a host or for DPC over it; the per-method scripts call this.
#
#   benchmark.sh METHOD STEP ARGS...      METHOD: host (the host itself), dpc (DPC over the host) or teacher
#                                         (the teacher run the host needs, PromptKD's)
#   HOST=<trainer> names the host; CFG / DPC_CFG choose configs (default: the pipeline's presets);
#   SHOTS sets the shots (default 16).
#
# STEP               ARGS                 stage(s) run
# base2new_train     DATASET SEED         train on the base classes (its final test = base accuracy)
# base2new_test      DATASET SEED         evaluate the base2new_train checkpoint on the new classes
# xd_train           SEED                 train on ImageNet, all classes (cross-dataset and DG source)
# xd_test            DATASET SEED         evaluate the xd_train checkpoint on DATASET (all classes)
# few_shot           DATASET SEED [SHOTS] train and test on all classes with SHOTS shots
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case "${1:-}" in -h|--help) print_usage_header "$0"; exit 0 ;; esac

METHOD="${1:?usage: benchmark.sh host|dpc STEP ARGS...}"
STEP="${2:?usage: benchmark.sh host|dpc STEP ARGS...}"
shift 2
parse_common_args "$@"
set -- ${POSITIONAL[@]+"${POSITIONAL[@]}"}
[ -n "${HOST:-}" ] || die "HOST is not set: name the host trainer (HOST=CoOp or --host CoOp)"
case "$METHOD" in
    host) PREFIX=host ;;
    dpc) PREFIX=dpc ;;
    teacher) PREFIX=teacher ;;  # the run a host's model needs first (PromptKD's teacher); train steps only
    *) die "METHOD must be host, dpc or teacher, got '$METHOD'" ;;
esac

CONFIGS=()
if [ -n "${CFG:-}" ]; then
    if [ "$METHOD" = teacher ]; then CONFIGS+=(--teacher-config "$CFG"); else CONFIGS+=(--host-config "$CFG"); fi
fi
[ -z "${DPC_CFG:-}" ] || CONFIGS+=(--dpc-config "$DPC_CFG")
SHOTS="${SHOTS:-16}"

usage() {
    die "usage: ${SCRIPT_NAME:-$0} $*"
}

case "$STEP" in
    base2new_train|base2new_test)
        [ $# -eq 2 ] || usage "DATASET SEED"
        STAGE=train; [ "$STEP" = base2new_test ] && STAGE=test
        run_pipeline --host "$HOST" --mode base2new --datasets "$1" --seeds "$2" --shots "$SHOTS" \
            --stages "$PREFIX-$STAGE" ${CONFIGS[@]+"${CONFIGS[@]}"} --no-table
        ;;
    xd_train)
        [ $# -eq 1 ] || usage "SEED"
        run_pipeline --host "$HOST" --mode cross-dataset --seeds "$1" --shots "$SHOTS" \
            --stages "$PREFIX-train" ${CONFIGS[@]+"${CONFIGS[@]}"} --no-table
        ;;
    xd_test)
        [ $# -eq 2 ] || usage "DATASET SEED"
        run_pipeline --host "$HOST" --mode cross-dataset --datasets "$1" --seeds "$2" --shots "$SHOTS" \
            --stages "$PREFIX-test" ${CONFIGS[@]+"${CONFIGS[@]}"} --no-table
        ;;
    few_shot)
        [ $# -ge 2 ] && [ $# -le 3 ] || usage "DATASET SEED [SHOTS]"
        run_pipeline --host "$HOST" --mode few-shot --datasets "$1" --seeds "$2" --shots "${3:-$SHOTS}" \
            --stages "$PREFIX-train" ${CONFIGS[@]+"${CONFIGS[@]}"} --no-table
        ;;
    *)
        die "unknown step '$STEP' (base2new_train, base2new_test, xd_train, xd_test, few_shot)"
        ;;
esac
