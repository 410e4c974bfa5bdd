"""What each Slurm job asks for, from the ``--slurm-*`` flags, in submitit's parameters."""
import re
from dataclasses import dataclass

from submitit.slurm.slurm import _make_sbatch_string

from trainers.run.config_keys import ConfigError
from trainers.run.paths import REPO_DIR

# sbatch's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?$")


def minutes(text):
    """``--slurm-time`` in whole minutes (seconds round up), as submitit counts a job's time limit."""
    match = _TIME.match(text.strip())
    if not match:
        raise ConfigError(f"--slurm-time takes minutes or [D-]HH:MM[:SS] as sbatch does (e.g. 240, 4:00:00, "
                          f"1-00:00:00); got {text!r}")
    days, a, b, c = (int(match[name]) if match[name] else None for name in ("days", "a", "b", "c"))
    if days is None:
        # M, M:S or H:M:S
        hours, mins, secs = (a, b, c) if c is not None else (0, a, b or 0)
    else:
        # D-H, D-H:M or D-H:M:S
        hours, mins, secs = a, b or 0, c or 0
    total = ((days or 0) * 24 + hours) * 60 + mins + (1 if secs else 0)
    if total < 1:
        raise ConfigError(f"--slurm-time must be at least a minute; got {text!r}")
    return total


def sbatch_options(items):
    """``--slurm-extra KEY=VALUE ...`` -> {KEY: VALUE}, passed to sbatch as ``--KEY=VALUE``."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not value:
            raise ConfigError(f"--slurm-extra takes KEY=VALUE sbatch options (e.g. gres=gpu:a100:1 qos=normal); "
                              f"got {item!r}")
        options[key] = value
    return options


@dataclass(frozen=True)
class SlurmResources:
    """One run's job: the same for every run, since each is a single train.py on one node."""

    partition: str = ""
    time_minutes: int = 240
    gpus_per_run: int = 1
    cpus_per_run: int = 8  # the configs' DATALOADER.NUM_WORKERS
    mem: str = ""
    account: str = ""
    array_parallelism: int = 0  # 0: as many tasks of an array at a time as the cluster allows
    extra: tuple = ()  # (KEY, VALUE) sbatch options

    def __post_init__(self):
        for flag, value, least in (("--slurm-gpus-per-run", self.gpus_per_run, 0),
                                   ("--slurm-cpus-per-run", self.cpus_per_run, 1),
                                   ("--slurm-array-parallelism", self.array_parallelism, 0)):
            if value < least:
                raise ConfigError(f"{flag} takes a number of at least {least}; got {value}")

    def submitit_parameters(self, job_name):
        """Parameters for ``submitit.SlurmExecutor.update_parameters``."""
        parameters = {"job_name": job_name, "time": self.time_minutes, "cpus_per_task": self.cpus_per_run,
                      # --requeue: a preempted job or one on a failed node goes back to the queue, and resumes;
                      # --chdir: the job unpickles its callable from the repository's tools package
                      "additional_parameters": {"requeue": True, "chdir": REPO_DIR, **dict(self.extra)}}
        if self.gpus_per_run:
            parameters["gpus_per_node"] = self.gpus_per_run
        for key, value in (("partition", self.partition), ("mem", self.mem), ("account", self.account),
                           ("array_parallelism", self.array_parallelism)):
            if value:
                parameters[key] = value
        return parameters


def sbatch_header(parameters, folder, tasks):
    """The ``#SBATCH`` lines submitit writes for an array of ``tasks`` runs with these parameters.

    submitit has no public dry-run, so this calls the function its executor uses to write (and to validate)
    every submission file; ``setup.py`` pins submitit's major version."""
    script = _make_sbatch_string(command="", folder=folder, map_count=tasks if tasks > 1 else None, **parameters)
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]
