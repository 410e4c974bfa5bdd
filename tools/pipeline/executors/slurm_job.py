"""What a Slurm job runs on its node: train.py for one run, requeued when it is preempted or near its time limit.

The pipeline pickles a ``TrainJob`` per run (submitit's job arrays); the node unpickles it from this module,
which therefore imports only the standard library, submitit and the light process helpers.
"""
import signal

import submitit

from tools.pipeline.executors.processes import spawn_train, write_header


def _requeue_signal():
    """The signal submitit asks Slurm to send before stopping a job (USR2 unless SUBMITIT_PREEMPT_SIGNAL says)."""
    return getattr(signal, f"SIG{submitit.JobEnvironment.USR_SIG}")


class TrainJob(submitit.helpers.Checkpointable):
    """``python train.py ARGV`` from the repository root, its output appended to the run's output file.

    submitit calls ``checkpoint`` when Slurm signals that the job is about to be stopped (``--signal``, before
    the time limit or on preemption) and requeues the job with what it returns: the same call, so the next
    attempt starts train.py again in the same directory, where it resumes from the run's last checkpoint.
    """

    def __init__(self, argv, output_file, command_line, python):
        self.argv = list(argv)
        self.output_file = output_file
        self.command_line = command_line
        self.python = python

    def __call__(self):
        job = submitit.JobEnvironment()
        with open(self.output_file, "a") as out:
            write_header(out, f"slurm job {job.job_id} on {job.hostname}: {self.command_line}")
            # Slurm signals every process of the job; the handler submitit installed in this one requeues the
            # job, so train.py ignores that signal rather than die of it first.
            process = spawn_train(self.python, self.argv, out, ignored=(_requeue_signal(),))
            try:
                return process.wait()
            except BaseException:  # requeued (submitit exits this process) or cancelled
                process.kill()
                process.wait()
                raise

    def checkpoint(self, *args, **kwargs):
        with open(self.output_file, "a") as out:
            write_header(out, "slurm: the job is being stopped (time limit or preemption) and requeued; "
                              "train.py resumes from the last checkpoint")
        return super().checkpoint(*args, **kwargs)
