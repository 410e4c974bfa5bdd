"""The pipeline's ``--executor`` flags and the executor they make (``tools/pipeline/executors``)."""
import os

from tools.pipeline.executors.devices import local_slots, parse_gpu_list
from tools.pipeline.executors.processes import LocalExecutor, SerialExecutor
from tools.pipeline.executors.slurm import SlurmExecutor
from tools.pipeline.executors.slurm_resources import SlurmResources, minutes, sbatch_options
from trainers.run.config_keys import ConfigError

EXECUTORS = ("serial", "local", "slurm")
LOCAL_FLAGS = ("gpus", "jobs_per_gpu", "jobs")
SLURM_FLAGS = ("slurm_partition", "slurm_time", "slurm_gpus_per_run", "slurm_cpus_per_run", "slurm_mem",
               "slurm_account", "slurm_array_parallelism", "slurm_extra", "slurm_poll_seconds")


def add_executor_arguments(parser):
    where = parser.add_argument_group("where the runs execute")
    where.add_argument("--executor", choices=EXECUTORS, default="serial",
                       help="serial: one run after another (default); local: several at a time on this machine's "
                            "GPUs or CPU; slurm: Slurm job arrays through submitit")
    local = parser.add_argument_group("--executor local")
    local.add_argument("--gpus", metavar="0,1,...", help="the GPUs to use (default: every visible CUDA device); "
                       "each run sees only its own GPU (CUDA_VISIBLE_DEVICES)")
    local.add_argument("--jobs-per-gpu", type=int, metavar="K",
                       help="runs at a time on each GPU (default 1); small-batch prompt tuning leaves a GPU idle "
                            "between kernel launches, and K > 1 fills it")
    local.add_argument("--jobs", type=int, metavar="N",
                       help="runs at a time in all: on the CPU when no GPU is visible (default 1), else spread over "
                            "the GPUs")
    slurm = parser.add_argument_group("--executor slurm")
    slurm.add_argument("--slurm-partition", metavar="NAME", help="partition (default: the cluster's)")
    slurm.add_argument("--slurm-time", metavar="TIME",
                       help="time limit of each job, as sbatch takes it: minutes or [D-]HH:MM[:SS] (default 4:00:00);"
                            " a job that reaches it is requeued and resumes from its last checkpoint")
    slurm.add_argument("--slurm-gpus-per-run", type=int, metavar="N", help="GPUs per job (default 1; 0 for none)")
    slurm.add_argument("--slurm-cpus-per-run", type=int, metavar="N",
                       help="CPUs per job (default 8, the configs' data loader workers)")
    slurm.add_argument("--slurm-mem", metavar="SIZE", help="memory per job, as sbatch takes it (e.g. 32G)")
    slurm.add_argument("--slurm-account", metavar="NAME", help="account to charge")
    slurm.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help="at most N tasks of each job array at a time (default: no limit)")
    slurm.add_argument("--slurm-extra", nargs="+", action="extend", metavar="KEY=VALUE",
                       help="more sbatch options, e.g. gres=gpu:a100:1 qos=normal constraint=a100")
    slurm.add_argument("--slurm-poll-seconds", type=float, metavar="S",
                       help="how often squeue is asked which jobs have ended (default 30)")


def _given(args, names):
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]


def executor_from_args(args):
    """The executor the flags ask for; flags of another executor are an error, not silently ignored."""
    for executor, names in (("local", LOCAL_FLAGS), ("slurm", SLURM_FLAGS)):
        stray = _given(args, names) if args.executor != executor else []
        if stray:
            raise ConfigError(f"{', '.join(stray)}: option(s) of --executor {executor}, "
                              f"but this command uses --executor {args.executor}")
    if args.executor == "local":
        gpus = parse_gpu_list(args.gpus) if args.gpus is not None else None
        return LocalExecutor(local_slots(gpus, args.jobs_per_gpu, args.jobs))
    if args.executor == "slurm":
        return _slurm_executor(args)
    return SerialExecutor()


def _slurm_executor(args):
    defaults = SlurmResources()
    resources = SlurmResources(
        partition=args.slurm_partition or "", account=args.slurm_account or "", mem=args.slurm_mem or "",
        time_minutes=minutes(args.slurm_time) if args.slurm_time else defaults.time_minutes,
        gpus_per_run=defaults.gpus_per_run if args.slurm_gpus_per_run is None else args.slurm_gpus_per_run,
        cpus_per_run=defaults.cpus_per_run if args.slurm_cpus_per_run is None else args.slurm_cpus_per_run,
        array_parallelism=args.slurm_array_parallelism or 0,
        extra=tuple(sbatch_options(args.slurm_extra).items()))
    poll = 30.0 if args.slurm_poll_seconds is None else args.slurm_poll_seconds
    if poll <= 0:
        raise ConfigError(f"--slurm-poll-seconds takes a positive number; got {poll:g}")
    return SlurmExecutor(resources, folder=os.path.join(args.out, "slurm"), poll_seconds=poll)
