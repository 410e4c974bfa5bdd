"""Runs you can trust, in real processes: the run lock after kill -9 beside live data workers, stop signals at
any point, and the same numbers from the same command (docs/RELIABILITY.md)."""
import os
import random
import signal
import time

import pytest
import torch
from support.child_processes import assert_all_end
from support.fault_runs import (
    SIGNAL_AT_STEP,
    assert_same_final_prompt,
    coop_train_args,
    final_state,
    leftover_partial_files,
    run,
    session_members,
    signal_sent_at,
    start,
)

from trainers.run.lock import RunLockedError, run_lock


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_clip_path):
    """A shapes dataset and, per data-worker count, an uninterrupted CoOp run to compare with (made on demand)."""
    from datasets.shapes import make_shapes_dataset

    tmp = tmp_path_factory.mktemp("faults_runs")
    root = str(tmp / "data")
    make_shapes_dataset(root)
    references, wall = {}, {}

    def reference(workers):
        if workers not in references:
            out = tmp / f"uninterrupted_{workers}"
            started = time.time()
            run(coop_train_args(root, tiny_clip_path, out, "DATALOADER.NUM_WORKERS", workers))
            references[workers], wall[workers] = out, time.time() - started
        return references[workers]

    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "reference": reference, "wall": wall}


# ---- 1. kill -9 of the trainer while its data workers live on ------------------------------------------------


@pytest.mark.slow
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


def start_lock_holder(lock_path, log):
    """``HOLDER`` on ``lock_path``, once it has taken the lock."""
    holder = start(["-c", HOLDER, lock_path], log)
    try:
        deadline = time.time() + 60
        while "locked" not in log.read_text():
            assert time.time() < deadline and holder.poll() is None, log.read_text()
            time.sleep(0.05)
    except BaseException:
        holder.kill()
        holder.wait()
        raise
    return holder


def test_1_a_live_holder_is_named_truthfully(tmp_path):
    """A second writer is refused with the pid of the process that holds the lock, not the pid the file says."""
    out = tmp_path / "run"
    out.mkdir()
    holder = start_lock_holder(out / ".lock", tmp_path / "holder.log")
    try:
        with pytest.raises(RunLockedError, match=rf"{out} is being written by another process \(pid {holder.pid}\);"):
            with run_lock(str(out)):
                pass
    finally:
        holder.kill()
        holder.wait()


# ---- 3. stop signals at any point ------------------------------------------------------------------------------

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGUSR2]


def assert_stopped_cleanly(process, signum, sent_at, out, log):
    """Ended within seconds of the signal with 128 + its number, no partial file, the checkpoint readable. A run
    that had finished (its results.json written) may also end with 0, or of the signal during the interpreter's
    exit, when Python no longer handles signals."""
    status = process.wait(timeout=60)
    ended_within = time.time() - sent_at  # (an upper bound: the wait may have begun later)
    finished = (out / "results.json").exists()
    assert status == 128 + signum or (finished and status in (0, -signum)), log.read_text()[-3000:]
    assert ended_within < 15, f"the run took {ended_within:.1f} s to stop"
    if status == 128 + signum:
        assert f"stopped by {signal.Signals(signum).name}" in log.read_text()
        assert not finished
    assert leftover_partial_files(out) == []
    if (out / "prompt_learner" / "checkpoint").exists():
        final_state(out)  # loads
    return status


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_3_a_stop_signal_mid_epoch_keeps_the_last_checkpoint_and_the_rerun_is_bit_identical(world, signum):
    out = world["tmp"] / f"stopped_mid_epoch_{signum}"
    args = coop_train_args(world["root"], world["clip"], out)
    log = world["tmp"] / f"stopped_mid_epoch_{signum}.log"
    process = start(["-c", SIGNAL_AT_STEP, int(signum), 2, 0, *args[1:]], log)
    process.wait(timeout=300)
    assert assert_stopped_cleanly(process, signum, signal_sent_at(log), out, log) == 128 + signum
    assert final_state(out)[1] == 2  # epochs 1 and 2 kept, epoch 3 lost
    resumed = run(args)
    assert "Previous epoch: 2" in resumed.stdout
    assert_same_final_prompt(world["reference"](0), out)


@pytest.mark.parametrize("signum, seed", [(s, i) for i, s in enumerate(SIGNALS)],
                         ids=lambda v: signal.Signals(v).name if isinstance(v, signal.Signals) else str(v))
@pytest.mark.slow
def test_3_a_stop_signal_at_a_random_moment_leaves_a_run_that_resumes_exactly(world, signum, seed):
    """The signal comes from outside at a (seeded) random moment of the run's life, start-up included."""
    reference = world["reference"](0)
    wall = world["wall"][0]  # how long the uninterrupted run took, started as this one is
    delay = random.Random(22 + seed).uniform(0.05, 0.7) * wall
    out = world["tmp"] / f"stopped_at_random_{signum}"
    args = coop_train_args(world["root"], world["clip"], out)
    log = world["tmp"] / f"stopped_at_random_{signum}.log"
    process = start(args, log)
    time.sleep(delay)
    process.send_signal(signum)
    assert_stopped_cleanly(process, signum, time.time(), out, log)
    run(args)
    assert_same_final_prompt(reference, out)


def test_3_a_stop_signal_during_a_checkpoint_write_waits_for_the_whole_checkpoint(tmp_path, shapes_root,
                                                                                     tiny_clip_path, monkeypatch):
    """SIGTERM arrives while torch writes epoch 2's checkpoint: the write completes, the run stops after it."""
    from support.runs import run_train, train_argv

    from trainers.run.stop_signals import StopRequested

    def args(out):
        return train_argv("CoOp", shapes_root, tiny_clip_path, out, "TRAINER.COOP.CTX_INIT", "", "OPTIM.LR", 0.05,
                          epochs=3)

    reference = tmp_path / "uninterrupted"
    run_train(*args(reference))
    out = tmp_path / "stopped"
    save = torch.save

    def save_with_a_signal(obj, path, *rest, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled at once: the stop must wait for the file
        return save(obj, path, *rest, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", save_with_a_signal)
        with pytest.raises(StopRequested):
            run_train(*args(out))
    assert final_state(out)[1] == 2 and leftover_partial_files(out) == []
    assert (out / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-2\n"
    run_train(*args(out))
    assert_same_final_prompt(reference, out)


# ---- 5. two writers of one output folder: the pipeline -----------------------------------------------------------


def test_5_a_second_pipeline_on_one_output_root_is_refused_before_any_run(tmp_path):
    """A second pipeline would move aside (as stale) a run the first one is writing; it is refused, naming the
    first one, and starts nothing."""
    from tools.pipeline import cli as pipeline

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "good.yaml").write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "good"\n')
    holder = start_lock_holder(out / ".lock", tmp_path / "holder.log")
    try:
        with pytest.raises(RunLockedError, match=rf"{out} is being written by another process \(pid {holder.pid}\)"):
            pipeline.main(["--host", "CoOp", "--root", str(tmp_path), "--out", str(out), "--datasets",
                           str(tmp_path / "good.yaml"), "--seeds", "1", "--host-config", "cpu_tiny",
                           "--dpc-config", "cpu_tiny", "--no-progress", "--no-table"])
        assert sorted(os.listdir(out)) == [".lock"]
    finally:
        holder.kill()
        holder.wait()


def test_1_a_temporary_file_left_by_kill_9_is_removed_by_the_rerun(tmp_path, shapes_root, tiny_clip_path, capsys):
    """kill -9 during a checkpoint write leaves its hidden temporary file; the resumed run deletes it."""
    from support.runs import run_train, run_train_interrupted, train_argv

    out = tmp_path / "run"
    args = train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=3)
    run_train_interrupted(2, *args)
    leftover = out / "prompt_learner" / ".model.pth.tar-3.k2j4x8.tmp"  # as replace_atomically names them
    leftover.write_bytes(b"half a checkpoint")
    capsys.readouterr()
    run_train(*args)
    assert f"Removed {leftover}, left by a write that was cut short" in capsys.readouterr().out
    assert leftover_partial_files(out) == [] and (out / "results.json").exists()
