"""``--executor local``: several train.py processes at a time, each on its own device, with the serial results.

The equality test runs the small pipeline for real (tests/support/small_pipeline.py); the device and Ctrl-C tests give
the executor a fake interpreter that records what each child saw and sleeps instead of training.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from support.child_processes import assert_all_end
from support.paths import REPO_DIR
from support.small_pipeline import pipeline_argv, prompts_by_run, results_by_run

from tools.pipeline import cli as pipeline
from tools.pipeline.executor_options import executor_from_args
from tools.pipeline.executors.devices import UNASSIGNED, DeviceSlots, local_slots, visible_gpus
from tools.pipeline.executors.processes import LocalExecutor
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import FAILED, execute
from trainers.run.config_keys import ConfigError


@pytest.mark.slow
@pytest.mark.reference_seeds(1)
def test_two_at_a_time_gives_the_serial_results(tmp_path, serial_reference, tiny_clip_path, monkeypatch, capsys):
    """Seed 1 of the reference pipeline (8 runs: both datasets, all four stages) keeps the suite short; the Slurm
    test runs all 16 (and the reference runs seed 2 only for it)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ref, out = serial_reference, tmp_path / "out"
    argv = pipeline_argv(ref["root"], ref["yamls"], out, tiny_clip_path, seeds=(1,))
    assert pipeline.main(argv + ["--executor", "local", "--jobs", "2"]) == 0
    assert "8 runs: 8 ran, 0 already finished (skipped), 0 failed, 0 blocked" in capsys.readouterr().out
    expected = {run: result for run, result in results_by_run(ref["out"]).items() if run.endswith("seed1")}
    assert results_by_run(out) == expected
    expected, got = prompts_by_run(ref["out"]), prompts_by_run(out)
    assert len(got) == 4  # a checkpoint per training run
    for checkpoint, tensors in got.items():
        assert all(torch.equal(expected[checkpoint][name], value) for name, value in tensors.items()), checkpoint


def fake_python(tmp_path, body):
    """An interpreter stand-in: ``body`` runs with $LOG (a folder for what the child records) and exits."""
    log = tmp_path / "children"
    log.mkdir()
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\nLOG={log}\n{body}\n")
    path.chmod(0o755)
    return str(path), log


def host_trainings(folder, seeds):
    """One host training per seed, none needing another (train.py is never really run on them)."""
    yaml = os.path.join(folder, "d.yaml")
    with open(yaml, "w") as f:
        f.write('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "d"\n')
    return build_plan(Spec(host="CoOp", root=folder, out=os.path.join(folder, "out"), seeds=list(seeds),
                           datasets=[yaml], host_config="cpu_tiny", stages=("host-train",)), warn=lambda m: None)


def test_each_run_sees_one_gpu_and_each_gpu_takes_k_runs_at_a_time(tmp_path):
    python, log = fake_python(tmp_path, 'echo "$CUDA_VISIBLE_DEVICES $(date +%s.%N)" > $LOG/$$\nsleep 1\n'
                                        'echo "$(date +%s.%N)" >> $LOG/$$\nexit 1')
    runs = host_trainings(str(tmp_path), seeds=range(1, 9))
    executor = LocalExecutor(local_slots(gpus=["0", "1"], jobs_per_gpu=2), python=python)
    outcomes = execute(runs, executor=executor, progress=False, echo=lambda line: None)
    assert all(o.status == FAILED and "exit status 1" in o.message for o in outcomes)  # the fake trains nothing
    spans = []
    for name in os.listdir(log):
        (device, start), (end,) = (line.split() for line in (log / name).read_text().splitlines())
        spans.append((device, float(start), float(end)))
    assert len(spans) == 8 and {device for device, _, _ in spans} == {"0", "1"}

    def busy(at, device=None):
        return sum(start <= at < end for d, start, end in spans if device in (None, d))

    starts = [start for _, start, _ in spans]
    assert max(busy(t) for t in starts) == 4  # all four slots were used at once
    assert max(busy(t, device) for t in starts for device in ("0", "1")) == 2  # never three on one GPU


def test_device_slots_spread_runs_over_the_gpus_before_doubling_up():
    slots = DeviceSlots(["0", "1"], per_device=2)
    assert [slots.take() for _ in range(4)] == ["0", "1", "0", "1"] and not slots.free()
    slots.give_back("1")
    assert slots.free() and slots.take() == "1"
    capped = DeviceSlots(["0", "1", "2"], per_device=2, total=4)
    assert [capped.take() for _ in range(4)] == ["0", "1", "2", "0"] and not capped.free()


def test_devices_come_from_the_flags_or_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,GPU-5f3a"}) == ["2", "GPU-5f3a"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}) == ["0"]  # CUDA stops at an invalid entry
    slots = local_slots(jobs_per_gpu=3, environ={"CUDA_VISIBLE_DEVICES": "4,7"})
    assert (slots.devices, slots.per_device, slots.size) == (["4", "7"], 3, 6)
    spread = local_slots(gpus=["0", "1"], jobs=3)
    assert (spread.per_device, spread.size) == (2, 3)
    cpu = local_slots(jobs=2, environ={"CUDA_VISIBLE_DEVICES": ""})
    assert (cpu.devices, cpu.size) == ([UNASSIGNED], 2)
    with pytest.raises(ConfigError, match="no GPU is visible"):
        local_slots(jobs_per_gpu=2, environ={"CUDA_VISIBLE_DEVICES": ""})
    executor = LocalExecutor(DeviceSlots(["3"], per_device=2))
    env = executor.environment("3")
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["OMP_NUM_THREADS"]


def test_local_flags_with_another_executor_are_an_error(tmp_path, capsys):
    argv = ["--host", "CoOp", "--root", str(tmp_path), "--datasets", "caltech101", "--gpus", "0,1", "--dry-run"]
    with pytest.raises(SystemExit) as stop:
        pipeline.main(argv)
    assert stop.value.code == 2
    assert "--gpus: option(s) of --executor local, but this command uses --executor serial" in capsys.readouterr().err
    args = pipeline.build_parser().parse_args(argv + ["--executor", "local", "--jobs-per-gpu", "2"])
    assert executor_from_args(args).slots.devices == ["0", "1"]


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_pipeline_leaves_no_child_running(tmp_path, stop_signal):
    """Ctrl-C: the pipeline ends every child before it exits; kill -9: the kernel ends them (PR_SET_PDEATHSIG)."""
    python, log = fake_python(tmp_path, "echo $$ > $LOG/$$.tmp && mv $LOG/$$.tmp $LOG/$$\nexec sleep 60")
    driver = f"""
import sys
sys.path.insert(0, {REPO_DIR!r}); sys.path.insert(0, {os.path.join(REPO_DIR, "tests")!r})
from test_executor_local import host_trainings
from tools.pipeline.executors.devices import UNASSIGNED, DeviceSlots
from tools.pipeline.executors.processes import LocalExecutor
from tools.pipeline.runner import execute
two_at_a_time = LocalExecutor(DeviceSlots([UNASSIGNED], per_device=2), python={python!r})
execute(host_trainings({str(tmp_path)!r}, seeds=(1, 2, 3)), executor=two_at_a_time, progress=False)
"""
    pipeline_process = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO_DIR)
    deadline = time.time() + 60
    while len(os.listdir(log)) < 2:
        assert time.time() < deadline and pipeline_process.poll() is None, "the children never started"
        time.sleep(0.1)
    time.sleep(0.2)  # the pid files are complete once renamed; give a third child the chance to (wrongly) start
    children = [int(name) for name in os.listdir(log) if not name.endswith(".tmp")]
    assert len(children) == 2  # two slots
    pipeline_process.send_signal(stop_signal)
    assert pipeline_process.wait(timeout=30) != 0
    assert_all_end(children, within=15)
