"""Runs you can trust, in real processes: the run lock after kill -9 beside live data workers, stop signals at
any point, and the same numbers from the same command (docs/RELIABILITY.md)."""
import signal
import time

import pytest

from child_processes import assert_all_end
from fault_runs import (
    SIGNAL_AT_STEP, assert_same_final_prompt, coop_train_args, final_state, run, session_members, start,
)
from trainers.run_lock import RunLockedError, run_lock


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_clip_path):
    """A shapes dataset and, per data-worker count, an uninterrupted CoOp run to compare with (made on demand)."""
    from datasets.shapes import make_shapes_dataset

    tmp = tmp_path_factory.mktemp("faults_runs")
    root = str(tmp / "data")
    make_shapes_dataset(root)
    references = {}

    def reference(workers):
        if workers not in references:
            out = tmp / f"uninterrupted_{workers}"
            run(coop_train_args(root, tiny_clip_path, out, "DATALOADER.NUM_WORKERS", workers))
            references[workers] = out
        return references[workers]

    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "reference": reference}


# ---- 1. kill -9 of the trainer while its data workers live on ------------------------------------------------


def test_1_the_rerun_right_after_kill_9_beside_live_workers_takes_the_lock_and_resumes(world):
    """kill -9 of the main process (what the out-of-memory killer does) during epoch 3 of 4, with 2 data workers:
    the workers outlive it for seconds, yet the lock is free at once and the same command resumes exactly."""
    out = world["tmp"] / "killed_with_workers"
    args = coop_train_args(world["root"], world["clip"], out, "DATALOADER.NUM_WORKERS", 2)
    trainer = start(["-c", SIGNAL_AT_STEP, int(signal.SIGKILL), 2, 0, *args[1:]], world["tmp"] / "killed.log")
    assert trainer.wait(timeout=300) == -signal.SIGKILL, (world["tmp"] / "killed.log").read_text()[-2000:]
    workers = session_members(trainer.pid)  # its session: the orphaned data workers
    try:
        assert workers, "no data worker outlived the trainer: the case is not exercised"
        with run_lock(str(out)):  # free at once, while the workers still run
            pass
        assert final_state(out)[1] == 2 and not (out / "results.json").exists()
        resumed = run(args)
        assert "Previous epoch: 2" in resumed.stdout and "epoch [1/4]" not in resumed.stdout
        assert_same_final_prompt(world["reference"](2), out)
    finally:
        assert_all_end(workers, within=30, what="a data worker of the killed trainer")


# A process that holds a run's lock and wrote a wrong pid into it (as a forked child of an older release did):
# plain Python, so that it starts at once.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"999999999")
print("locked", flush=True)
time.sleep(60)
"""


def test_1_a_live_holder_is_named_truthfully(tmp_path):
    """A second writer is refused with the pid of the process that holds the lock, not the pid the file says."""
    out = tmp_path / "run"
    out.mkdir()
    holder = start(["-c", HOLDER, out / ".lock"], tmp_path / "holder.log")
    try:
        deadline = time.time() + 60
        while "locked" not in (tmp_path / "holder.log").read_text():
            assert time.time() < deadline and holder.poll() is None, (tmp_path / "holder.log").read_text()
            time.sleep(0.05)
        with pytest.raises(RunLockedError, match=rf"{out} is being written by another process \(pid {holder.pid}\);"):
            with run_lock(str(out)):
                pass
    finally:
        holder.kill()
        holder.wait()
