"""What the pipeline shows while runs execute: run i/N as each starts, and the running run's epoch and ETA,
read from its output file in the training line both runtimes print."""
import io
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from support.paths import REPO_DIR
from support.records import mark_finished
from support.small_pipeline import make_two_datasets, pipeline_argv
from test_scheduler import plan

from tools.pipeline.progress import RunsProgress, run_status, running_text
from tools.pipeline.runner import INTERRUPTED, OUTPUT_FILE, execute

BUILTIN_LINE = ("epoch [3/20] batch [2/5] time 0.011 (0.012) data 0.001 (0.001) loss 1.0986 (1.1) acc 33.3 (33.3) "
                "lr 2.0000e-03 eta 0:01:02\n")
DASSL_LINE = "epoch [7/50] batch [1/1] time 0.2 (0.3) data 0.1 (0.1) loss 0.5 (0.6) lr 1.9e-03 eta 1:02:03\n"


def test_the_status_is_the_last_training_line_or_testing_after_it(tmp_path):
    output = tmp_path / "pipeline_output.txt"
    assert run_status(str(output)) == ""  # not written yet: starting
    output.write_text("===== pipeline: python train.py ...\nLoading CLIP\n")
    assert run_status(str(output)) == ""
    output.write_text(BUILTIN_LINE.replace("[3/20]", "[2/20]") + BUILTIN_LINE)
    assert run_status(str(output)) == "epoch 3/20, eta 0:01:02"
    output.write_text(DASSL_LINE)
    assert run_status(str(output)) == "epoch 7/50, eta 1:02:03"
    output.write_text(DASSL_LINE + "Finish training\nEvaluate on the *test* set\n")
    assert run_status(str(output)) == "testing"
    # a second attempt of the run (resumed) trains again after an earlier test line
    output.write_text(DASSL_LINE + "Evaluate on the *test* set\n===== pipeline: again\n" + BUILTIN_LINE)
    assert run_status(str(output)) == "epoch 3/20, eta 0:01:02"


def test_the_postfix_names_the_oldest_run_its_status_and_how_many_more_run(tmp_path):
    files = {}
    runs = []
    for seed, text in ((1, BUILTIN_LINE), (2, "")):
        run = SimpleNamespace(key=f"base2new/train_base/eurosat/shots_16/CoOp/vit_b16/seed{seed}")
        files[run.key] = tmp_path / f"{seed}.txt"
        files[run.key].write_text(text)
        runs.append(run)
    started = [(runs[1], 100.0), (runs[0], 40.0)]
    text = running_text(started, lambda run: str(files[run.key]), now=100.0)
    assert text == "train_base eurosat CoOp seed1 (epoch 3/20, eta 0:01:02, 60 s) +1 running"
    assert running_text([(runs[1], 90.0)], lambda run: str(files[run.key]), now=100.0) == \
        "train_base eurosat CoOp seed2 (10 s)"
    assert running_text([], str) == ""


def test_each_run_is_announced_with_its_place_among_the_plans_runs(tmp_path):
    runs = plan(tmp_path, ["shapes"])
    mark_finished(runs[0])  # finished earlier: settled without a line, yet it counts
    lines = []

    def train(run, output_file):
        mark_finished(run)
        return 0

    outcomes = execute(runs, executor=train, progress=False, echo=lines.append)
    assert [o.status for o in outcomes] == ["done"] + ["ran"] * (len(runs) - 1)
    assert lines == [f"[run {i}/{len(runs)}] {run.key}" for i, run in enumerate(runs[1:], start=2)]


def test_the_bar_follows_the_running_run_until_closed(tmp_path):
    output = tmp_path / "out.txt"
    output.write_text(BUILTIN_LINE)
    run = SimpleNamespace(key="base2new/train_base/eurosat/shots_16/CoOp/vit_b16/seed1")
    shown = io.StringIO()
    bar = RunsProgress(2, lambda: [(run, time.time())], lambda run: str(output), file=shown, refresh_seconds=0.01)
    try:
        deadline = time.time() + 10
        while "epoch 3/20" not in shown.getvalue() and time.time() < deadline:
            time.sleep(0.01)
    finally:
        bar.close()
    assert "0/2 [" in shown.getvalue() and "train_base eurosat CoOp seed1 (epoch 3/20, eta 0:01:02, 0 s)" in \
        shown.getvalue()
    assert not bar._thread.is_alive()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["Ctrl-C", "SIGTERM"])
def test_a_stopped_pipeline_says_so_in_one_line_on_how_to_resume(stop, tmp_path, tiny_clip_path):
    """Ctrl-C signals the terminal's foreground process group (the pipeline and its train.py); ``kill`` or
    ``scancel`` of the pipeline's job sends SIGTERM to the pipeline, which stops its run and names the signal."""
    root, (shapes_a, _) = make_two_datasets(str(tmp_path))
    out = tmp_path / "out"
    argv = pipeline_argv(root, [shapes_a], out, tiny_clip_path, seeds=(1,), epochs=500)
    argv.remove("--no-progress")
    # Ctrl-C in a terminal signals the whole foreground process group: the pipeline and its train.py
    pipeline_process = subprocess.Popen([sys.executable, "-m", "tools.pipeline", *argv], cwd=REPO_DIR,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = out / "base2new/train_base/shapes_a/shots_2/CoOp/cpu_tiny/seed1" / OUTPUT_FILE
    deadline = time.time() + 120
    while "epoch [" not in (output.read_text() if output.exists() else ""):
        assert time.time() < deadline and pipeline_process.poll() is None, "the run never started training"
        time.sleep(0.1)
    if stop == "Ctrl-C":
        os.killpg(pipeline_process.pid, signal.SIGINT)
    else:
        pipeline_process.send_signal(signal.SIGTERM)
    stdout, stderr = pipeline_process.communicate(timeout=60)
    if stop == "Ctrl-C":
        assert pipeline_process.returncode == 130
        assert stderr.strip().splitlines()[-1] == INTERRUPTED
    else:
        assert pipeline_process.returncode == 128 + signal.SIGTERM
        assert stderr.strip().splitlines()[-1] == "pipeline: stopped by SIGTERM; run the same command again to " \
                                                  "resume (finished runs are skipped)"
        assert "train.py: stopped by SIGTERM" in output.read_text()  # its run was stopped, its checkpoint kept
    assert "Traceback" not in stdout + stderr
    assert "[run 1/4] base2new/train_base/shapes_a" in stderr + stdout
