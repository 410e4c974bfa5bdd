"""The pipeline's ``--executor`` flags and the executor they make (``tools/executors``)."""
from .configs import ConfigError
from .executors.devices import local_slots, parse_gpu_list
from .executors.processes import LocalExecutor, SerialExecutor

EXECUTORS = ("serial", "local")
LOCAL_FLAGS = ("gpus", "jobs_per_gpu", "jobs")


def add_executor_arguments(parser):
    where = parser.add_argument_group("where the runs execute")
    where.add_argument("--executor", choices=EXECUTORS, default="serial",
                       help="serial: one run after another (default); local: several at a time on this machine's "
                            "GPUs or CPU")
    local = parser.add_argument_group("--executor local")
    local.add_argument("--gpus", metavar="0,1,...", help="the GPUs to use (default: every visible CUDA device); "
                       "each run sees only its own GPU (CUDA_VISIBLE_DEVICES)")
    local.add_argument("--jobs-per-gpu", type=int, metavar="K",
                       help="runs at a time on each GPU (default 1); small-batch prompt tuning leaves a GPU idle "
                            "between kernel launches, and K > 1 fills it")
    local.add_argument("--jobs", type=int, metavar="N",
                       help="runs at a time in all: on the CPU when no GPU is visible (default 1), else spread over "
                            "the GPUs")


def _given(args, names):
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]


def executor_from_args(args):
    """The executor the flags ask for; flags of another executor are an error, not silently ignored."""
    for executor, names in (("local", LOCAL_FLAGS),):
        stray = _given(args, names) if args.executor != executor else []
        if stray:
            raise ConfigError(f"{', '.join(stray)}: option(s) of --executor {executor}, "
                              f"but this command uses --executor {args.executor}")
    if args.executor == "local":
        gpus = parse_gpu_list(args.gpus) if args.gpus is not None else None
        return LocalExecutor(local_slots(gpus, args.jobs_per_gpu, args.jobs))
    return SerialExecutor()

