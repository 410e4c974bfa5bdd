"""``--executor slurm``: every run a Slurm job, submitted through submitit; the pipeline stays the scheduler.

Whenever runs become ready, the ready runs of each stage go to the cluster as one job array (one task per
run, the same resources for all); the runs that need them are submitted once they have finished, by this
process, rather than queued up front with ``--dependency=afterok``. That way whether a run may start, is
stale or is finished is decided by the rules every executor shares (``tools.pipeline.run_state``, which read the
results.json of the runs it needs), and a failed run blocks its dependants at once instead of leaving them
pending in the queue for ever. The cost: the pipeline must keep running (on a login node, in tmux) until
the last job ends; if it stops, the jobs go on, and the same command run again follows them.

Each run's job id is kept in ``<run>/slurm_job.json``. A run whose job squeue still lists is followed, never
submitted twice. A job that is preempted or reaches its time limit is requeued and resumes from the run's
last checkpoint (``slurm_job.TrainJob``); its output, like every executor's, goes to the run's
``pipeline_output.txt``; submitit's own files (sbatch scripts, pickles, the job's log) are under ``folder``.
"""
import datetime
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Optional

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from tools.pipeline.executors.base import Executor, Exit
from tools.pipeline.executors.order import longest_chain_first
from tools.pipeline.executors.slurm_job import TrainJob
from tools.pipeline.executors.slurm_queue import JobQueue, SlurmQueryError, final_state
from tools.pipeline.executors.slurm_resources import sbatch_header
from trainers.run.checkpoints import write_text_atomically
from trainers.run.config_keys import ConfigError

JOB_RECORD = "slurm_job.json"
MAX_REQUEUES_ON_TIMEOUT = 3  # a run that needs more is given a longer --slurm-time
RESULT_GRACE_SECONDS = 15  # how long a shared file system may take to show a finished job's result file


def read_job_record(output_dir):
    """The job last submitted for the run in ``output_dir``, or None."""
    try:
        with open(os.path.join(output_dir, JOB_RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("job_id") and record.get("folder") else None


def _write_job_record(output_dir, job, folder):
    record = {"job_id": job.job_id, "folder": folder,
              "submitted": datetime.datetime.now().isoformat(timespec="seconds"),
              "slurm_log": str(job.paths.stderr), "slurm_stdout": str(job.paths.stdout)}
    write_text_atomically(os.path.join(output_dir, JOB_RECORD), json.dumps(record, indent=2) + "\n")


def _job_name(run):
    return f"{run.method}-{run.stage}"


def _error_line(text):
    """The exception line of a traceback submitit reports, or its first line."""
    errors = re.findall(r"^\w+(?:\.\w+)*(?:Error|Exception)\b.*$", text, flags=re.MULTILINE)
    return errors[-1] if errors else next((line for line in text.splitlines() if line.strip()), "")


@dataclass
class _Followed:
    run: object
    job: submitit.SlurmJob
    gone_since: Optional[float] = None  # when squeue stopped listing the job


class SlurmExecutor(Executor):
    """Runs as Slurm jobs with ``resources`` (a ``SlurmResources``); submitit's files go to ``folder``."""

    ordering = staticmethod(longest_chain_first)

    def __init__(self, resources, folder, poll_seconds=30.0, python=sys.executable):
        self.resources = resources
        self.folder = os.path.abspath(folder)
        self.poll_seconds = poll_seconds
        self.python = python
        self.queue = JobQueue(max_age=poll_seconds)
        self._to_submit = []  # (run, output file), until the next wait()
        self._followed = {}  # job id -> _Followed

    # ---- the seam --------------------------------------------------------------------------------------

    def has_room(self):
        return True  # the cluster queues what it cannot run yet

    def check(self):
        missing = [tool for tool in ("sbatch", "srun", "squeue", "scontrol") if shutil.which(tool) is None]
        if missing:
            raise ConfigError(f"--executor slurm: {', '.join(missing)} not found on PATH; run the pipeline where "
                              "Slurm's commands work (a login node), or see what would be submitted with --dry-run")

    def start(self, run, output_file):
        self._to_submit.append((run, output_file))
        return ""

    def adopt(self, run, output_file):
        record = read_job_record(run.output_dir)
        if record is None:
            return None
        state = self._live_jobs().get(record["job_id"])
        if state is None:
            return None
        self._follow(run, submitit.SlurmJob(folder=record["folder"], job_id=record["job_id"]))
        return f"job {record['job_id']} ({state.lower()}), submitted earlier; not submitted again"

    def wait(self, say):
        self._submit(say)
        while True:
            ended = self._collect_ended(say)
            if ended:
                return ended
            time.sleep(self.poll_seconds)

    def stop(self, say):
        if self._followed:
            ids = " ".join(sorted(self._followed))
            say(f"{len(self._followed)} Slurm job(s) go on running: {ids}. Run the same command again to follow "
                f"them (they are not submitted twice), or cancel them with: scancel {ids}")

    def dry_run_lines(self, runs, finished):
        """The arrays that would be submitted, a stage each, with their #SBATCH lines and their runs."""
        live = self._live_jobs(quiet=True)
        lines = ["# slurm executor: each stage's ready runs are submitted as one job array; a stage's runs are "
                 "submitted once the runs they need have finished",
                 f"# submitit's files (sbatch scripts, pickles, Slurm logs): {self.folder}"]
        stages = {}
        for run in runs:
            if run.key in finished:
                lines.append(f"# finished, skipped: {run.command_line()}")
                continue
            record = read_job_record(run.output_dir)
            if record is not None and record["job_id"] in live:
                lines.append(f"# queued or running as job {record['job_id']}: {run.command_line()}")
            else:
                stages.setdefault(run.stage, []).append(run)
        headers = {stage: sbatch_header(self.resources.submitit_parameters(_job_name(batch[0])), self.folder,
                                        len(batch)) for stage, batch in stages.items()}
        common = [line for line in next(iter(headers.values()), []) if all(line in h for h in headers.values())]
        if common:
            lines += ["#", "# every job:", *(f"#   {line}" for line in common)]
        for stage, batch in stages.items():
            needs = sorted({need.stage for run in batch for need in run.needs})
            after = f", each once its {' and '.join(needs)} run has finished" if needs else ""
            own = " ".join(line[len("#SBATCH "):] for line in headers[stage] if line not in common)
            lines += ["#", f"# {stage}: {len(batch)} run{'s' if len(batch) > 1 else ''}{after}: {own}",
                      *(run.command_line() for run in batch)]
        return lines

    # ---- submitting and following jobs ------------------------------------------------------------------

    def _submitit_executor(self, job_name):
        executor = submitit.SlurmExecutor(folder=self.folder, max_num_timeout=MAX_REQUEUES_ON_TIMEOUT)
        executor.update_parameters(**self.resources.submitit_parameters(job_name))
        return executor

    def _submit(self, say):
        stages = {}
        for run, output_file in self._to_submit:
            stages.setdefault(run.stage, []).append((run, output_file))
        self._to_submit = []
        for stage, batch in stages.items():
            executor = self._submitit_executor(_job_name(batch[0][0]))
            try:
                jobs = executor.submit_array([TrainJob(run.argv, output_file, run.command_line(), self.python)
                                              for run, output_file in batch])
            except FailedJobError as err:  # sbatch said no: a partition, account or resource it does not know
                raise ConfigError(f"sbatch refused the {stage} array of {len(batch)} run(s): {err}") from None
            for (run, _), job in zip(batch, jobs):
                _write_job_record(run.output_dir, job, self.folder)
                self._follow(run, job)
                say(f"[submitted] {run.key}: job {job.job_id}")

    def _follow(self, run, job):
        self._followed[job.job_id] = _Followed(run, job)

    def _live_jobs(self, quiet=False, fresh=False):
        try:
            return self.queue.live(fresh=fresh)
        except SlurmQueryError:
            if quiet:  # a dry run away from the cluster
                return {}
            raise

    def _collect_ended(self, say):
        """The followed jobs squeue no longer lists, with how each ended."""
        try:
            live = self._live_jobs(fresh=True)
        except SlurmQueryError as err:
            say(f"[warning] {err}; asking again in {self.poll_seconds:g} s")
            return []
        ended = []
        for job_id, followed in list(self._followed.items()):
            if job_id in live:
                continue
            result = self._exit(followed)
            if result is not None:
                del self._followed[job_id]
                ended.append((followed.run, result))
        return ended

    def _exit(self, followed):
        """How a job that left the queue ended: from submitit's result file, else from the state Slurm gives it;
        None while a completed job's result file may still be on its way (a shared file system's delay)."""
        job = followed.job
        if job.paths.result_pickle.exists():
            try:
                return Exit(job.result())
            except UncompletedJobError as err:  # the job failed around train.py (could not start it, say)
                return Exit(None, f"job {job.job_id} failed outside train.py ({_error_line(str(err))}); its log: "
                                  f"{job.paths.stderr}")
        state = final_state(job.job_id)
        if state in (None, "COMPLETED"):
            followed.gone_since = followed.gone_since or time.time()
            if time.time() - followed.gone_since < RESULT_GRACE_SECONDS:
                return None
        how = (f"ended {state} before train.py finished" if state else
               "left the queue before train.py finished (cancelled, or stopped by Slurm: time, memory, node)")
        return Exit(None, f"job {job.job_id} {how}; its log: {job.paths.stderr}")
