"""Which of our Slurm jobs are still queued or running, from ``squeue``.

``sacct`` would also say how a job ended, but it needs the cluster's accounting database, which not every
cluster (nor the tests' single-node Slurm) runs. The pipeline needs less: a job squeue lists must not be
submitted again nor given up on; once it is gone, its run's results.json and submitit's result file tell
the rest.
"""
import getpass
import subprocess
import time

# Every state of a job that has not ended; squeue's default leaves some out (suspended, requeued ones).
LIVE_STATES = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
               "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT")
ATTEMPTS = 3  # a busy slurmctld refuses a connection now and then
RETRY_SECONDS = 1.0


class SlurmQueryError(OSError):
    """squeue failed (slurmctld down or too busy to answer); the caller asks again later or reports it."""


def _squeue(command):
    for attempt in range(ATTEMPTS):
        try:
            listed = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise SlurmQueryError("squeue not found: Slurm's commands are not on PATH") from None
        except subprocess.TimeoutExpired:
            problem = "squeue did not answer within 60 s"
        else:
            if listed.returncode == 0:
                return listed.stdout
            problem = listed.stderr.strip() or f"exit status {listed.returncode}"
        if attempt + 1 < ATTEMPTS:
            time.sleep(RETRY_SECONDS)
    raise SlurmQueryError(f"squeue failed: {problem}")


def live_jobs():
    """{job id: state} of this user's jobs that have not ended; array tasks one by one, as ``<array>_<task>``."""
    listed = _squeue(["squeue", "--noheader", "--array", f"--user={getpass.getuser()}",
                      f"--states={','.join(LIVE_STATES)}", "--format=%i|%T"])
    jobs = {}
    for line in listed.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id:
            jobs[job_id] = state
    return jobs


class JobQueue:
    """``live_jobs()``, asked again only once the last answer is older than ``max_age`` seconds."""

    def __init__(self, max_age):
        self.max_age = max_age
        self._jobs, self._asked = {}, float("-inf")

    def live(self, fresh=False):
        if fresh or time.time() - self._asked > self.max_age:
            self._jobs, self._asked = live_jobs(), time.time()
        return self._jobs


def final_state(job_id):
    """The state Slurm gives a job that has left the queue (COMPLETED, CANCELLED, TIMEOUT, ...), while
    slurmctld still remembers it (``MinJobAge``, minutes); None when it no longer does."""
    try:
        shown = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True,
                               timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for field in shown.stdout.split() if shown.returncode == 0 else []:
        if field.startswith("JobState="):
            return field[len("JobState="):]
    return None
