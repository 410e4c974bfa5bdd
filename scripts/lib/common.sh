# Shared by the benchmark scripts (sourced, not run): reads DATA / OUTPUT, runs the pipeline from the repo root.
#
# Every script takes DATA (dataset root) and OUTPUT (output root, default ./output) from the environment or
# from --data DIR / --output DIR; --dry-run prints the train.py commands instead of running them, with the
# counts and the estimated cost of the runs; --executor serial|local|slurm is EXECUTOR below. Anything
# after "--" goes to "python -m tools.pipeline" unchanged (e.g. -- --opts MODEL.BACKBONE.NAME RN50).
# PYTHON selects the interpreter (default: python).
#
# Where the runs execute, from the environment (each variable set becomes the pipeline flag in brackets):
#   EXECUTOR=serial|local|slurm [--executor]
#   local:  GPUS=0,1,2,3 [--gpus]  JOBS_PER_GPU=K [--jobs-per-gpu]  JOBS=N [--jobs]
#   slurm:  PARTITION [--slurm-partition]  TIME_LIMIT=4:00:00 [--slurm-time]  GPUS_PER_RUN [--slurm-gpus-per-run]
#           CPUS_PER_RUN [--slurm-cpus-per-run]  MEM_PER_RUN=32G [--slurm-mem]  ACCOUNT [--slurm-account]
#           ARRAY_PARALLELISM [--slurm-array-parallelism]  SLURM_EXTRA="KEY=VALUE ..." [--slurm-extra]
#           POLL_SECONDS [--slurm-poll-seconds]
# e.g. EXECUTOR=slurm PARTITION=gpu TIME_LIMIT=8:00:00 DATA=/data bash scripts/reproduce_base2new.sh CoOp

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python}"
POSITIONAL=()
PIPELINE_EXTRA=()

die() {
    echo "error: $*" >&2
    exit 2
}

# print_usage_header SCRIPT: the comment block at the top of SCRIPT (after its #! line), without the "# ".
print_usage_header() {
    local file="$1"
    [ -f "$file" ] || file="$REPO_ROOT/$1"
    sed -n '1{/^#!/d;};/^#/!q;s/^# \{0,1\}//;p' "$file"
}

# parse_common_args "$@": fills POSITIONAL and PIPELINE_EXTRA, and DATA / OUTPUT / HOST from their flags;
# -h / --help prints the calling script's usage header (SCRIPT_NAME, else $0) and exits.
parse_common_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) print_usage_header "${SCRIPT_NAME:-$0}"; exit 0 ;;
            --data) [ $# -ge 2 ] || die "--data needs a directory"; DATA="$2"; shift 2 ;;
            --output) [ $# -ge 2 ] || die "--output needs a directory"; OUTPUT="$2"; shift 2 ;;
            --host) [ $# -ge 2 ] || die "--host needs a trainer name"; HOST="$2"; shift 2 ;;
            --dry-run) PIPELINE_EXTRA+=(--dry-run); shift ;;
            --executor) [ $# -ge 2 ] || die "--executor needs serial, local or slurm"; EXECUTOR="$2"; shift 2 ;;
            --) shift; PIPELINE_EXTRA+=("$@"); break ;;
            *) POSITIONAL+=("$1"); shift ;;
        esac
    done
}

# reproduce_host_args SCRIPT "$@": a reproduce_*.sh script's arguments; sets HOST (its one positional argument,
# else $HOST) or stops with the script's usage line.
reproduce_host_args() {
    local script="$1"
    shift
    local usage="usage: $script HOST [--dry-run] [--executor serial|local|slurm] (HOST: CoOp, MaPLe, PromptSRC, ...)"
    parse_common_args "$@"
    [ ${#POSITIONAL[@]} -le 1 ] || die "$usage"
    HOST="${POSITIONAL[0]:-${HOST:-}}"
    [ -n "$HOST" ] || die "$usage"
}

require_data() {
    if [ -z "${DATA:-}" ]; then
        die "DATA is not set: export DATA=/path/to/datasets (the folder holding imagenet/, caltech-101/, ...) or pass --data DIR"
    fi
}

absolute() {
    case "$1" in
        /*) echo "$1" ;;
        *) echo "$PWD/$1" ;;
    esac
}

# executor_args: fills EXECUTOR_ARGS with the pipeline flags of the executor variables that are set.
executor_args() {
    EXECUTOR_ARGS=()
    local pair name flag
    for pair in EXECUTOR:--executor GPUS:--gpus JOBS_PER_GPU:--jobs-per-gpu JOBS:--jobs \
                PARTITION:--slurm-partition TIME_LIMIT:--slurm-time GPUS_PER_RUN:--slurm-gpus-per-run \
                CPUS_PER_RUN:--slurm-cpus-per-run MEM_PER_RUN:--slurm-mem ACCOUNT:--slurm-account \
                ARRAY_PARALLELISM:--slurm-array-parallelism POLL_SECONDS:--slurm-poll-seconds; do
        name="${pair%%:*}"
        flag="${pair#*:}"
        [ -z "${!name:-}" ] || EXECUTOR_ARGS+=("$flag" "${!name}")
    done
    if [ -n "${SLURM_EXTRA:-}" ]; then
        local options
        read -r -a options <<< "$SLURM_EXTRA"
        EXECUTOR_ARGS+=(--slurm-extra "${options[@]}")
    fi
}

# run_pipeline ARGS...: python -m tools.pipeline --root $DATA --out $OUTPUT ARGS [executor flags] [extra args]
run_pipeline() {
    require_data
    local data out
    data="$(absolute "$DATA")"
    out="$(absolute "${OUTPUT:-output}")"
    executor_args
    (cd "$REPO_ROOT" && "$PYTHON" -m tools.pipeline --root "$data" --out "$out" "$@" \
        ${EXECUTOR_ARGS[@]+"${EXECUTOR_ARGS[@]}"} ${PIPELINE_EXTRA[@]+"${PIPELINE_EXTRA[@]}"})
}
