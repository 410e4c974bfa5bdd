"""``--executor slurm`` against a real single-node Slurm (tests/support/slurm_cluster.py), started for this module.

Without Slurm's packages, or as a user who cannot start its daemons, these tests skip and say why; CI installs
``slurm-wlm`` and ``munge`` and runs them as root. Jobs ask for one CPU and no GPU: the node has CPUs only.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from support.paths import REPO_DIR
from support.slurm_cluster import SingleNodeSlurm, why_unavailable
from support.small_pipeline import make_two_datasets, pipeline_argv, prompts_by_run, results_by_run

from tools.pipeline import cli as pipeline
from tools.pipeline.executors.slurm import JOB_RECORD, read_job_record
from trainers.engine import RUNTIME_NAME
from trainers.run.errors import run_reporting_bad_input
from trainers.run.record import read_results

# The executor only starts train.py processes and reads their records; it never touches the toolbox. The
# module runs once, in CI's built-in pass (a few minutes of real Slurm); train.py under Dassl gives the
# built-in results bit for bit (tests/test_runtimes.py), which is what the Dassl pass checks.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(why_unavailable()), reason=why_unavailable() or "Slurm is available"),
    pytest.mark.skipif(RUNTIME_NAME == "Dassl", reason="the Slurm executor is runtime-independent: tested in the "
                       "built-in pass (DPC_RUNTIME=builtin runs it here)"),
]

ON_THE_TEST_NODE = ["--executor", "slurm", "--slurm-gpus-per-run", "0", "--slurm-cpus-per-run", "1",
                    "--slurm-time", "10", "--slurm-poll-seconds", "0.5"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = SingleNodeSlurm(tmp_path_factory.mktemp("slurm")).start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**cluster.env, "OMP_NUM_THREADS": "1"}.items():
            patch.setenv(name, value)
        try:
            yield cluster
        finally:
            cluster.stop()


def job_ids(out):
    """Run directory (relative to ``out``) -> the job id recorded next to it."""
    return {os.path.relpath(d, out): read_job_record(d)["job_id"] for d, _, files in os.walk(out)
            if JOB_RECORD in files}


@pytest.mark.reference_seeds(1, 2)
def test_the_small_pipeline_on_slurm_gives_the_serial_results(slurm, tmp_path, serial_reference, tiny_clip_path,
                                                              capsys):
    ref, out = serial_reference, tmp_path / "out"
    assert pipeline.main(pipeline_argv(ref["root"], ref["yamls"], out, tiny_clip_path) + ON_THE_TEST_NODE) == 0
    assert "16 runs: 16 ran, 0 already finished (skipped), 0 failed, 0 blocked" in capsys.readouterr().out
    assert results_by_run(out) == results_by_run(ref["out"])
    expected, got = prompts_by_run(ref["out"]), prompts_by_run(out)
    assert sorted(got) == sorted(expected)
    for checkpoint, tensors in expected.items():
        assert all(torch.equal(got[checkpoint][name], value) for name, value in tensors.items()), checkpoint

    jobs = job_ids(out)
    assert len(jobs) == 16
    # the four host trainings were ready together: one job array, a task each
    trainings = sorted(job for run, job in jobs.items() if "/train_base/" in run and "/CoOp/" in run)
    assert len({job.split("_")[0] for job in trainings}) == 1 and sorted(j.split("_")[1] for j in trainings) == \
        ["0", "1", "2", "3"]
    run = out / "base2new/train_base/shapes_a/shots_2/CoOp/cpu_tiny/seed1"
    record = json.loads((run / JOB_RECORD).read_text())
    output = (run / "pipeline_output.txt").read_text()
    assert f"slurm job {record['job_id']} on {slurm.node}: python train.py" in output  # the job's log, in the run
    assert os.path.isfile(record["slurm_log"])  # submitit's own log, named in the record

    # finished runs are skipped: nothing is submitted again
    assert pipeline.main(pipeline_argv(ref["root"], ref["yamls"], out, tiny_clip_path) + ON_THE_TEST_NODE) == 0
    assert "16 runs: 0 ran, 16 already finished (skipped)" in capsys.readouterr().out
    assert job_ids(out) == jobs


def test_a_failing_run_is_reported_with_its_log_and_blocks_only_its_dependants(slurm, tmp_path, tiny_clip_path,
                                                                             capsys):
    root, (shapes_a, _) = make_two_datasets(str(tmp_path))
    missing = tmp_path / "missing.yaml"
    missing.write_text('DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "not_generated"\n')
    out = tmp_path / "out"
    argv = pipeline_argv(root, [shapes_a, str(missing)], out, tiny_clip_path, seeds=(1,))
    assert pipeline.main(argv + ["--stages", "host-train", "host-test", *ON_THE_TEST_NODE]) == 1
    printed = capsys.readouterr().out
    assert "4 runs: 2 ran, 0 already finished (skipped), 1 failed, 1 blocked" in printed
    failed = out / "base2new/train_base/missing/shots_2/CoOp/cpu_tiny/seed1"
    assert f"failed: base2new/train_base/missing/shots_2/CoOp/cpu_tiny/seed1: exit status 2; see " \
           f"{failed}/pipeline_output.txt" in printed
    assert "train.py: error: " in (failed / "pipeline_output.txt").read_text()
    assert "blocked: base2new/test_new/missing/shots_2/CoOp/cpu_tiny/seed1: needs" in printed
    assert read_results(out / "base2new/test_new/shapes_a/shots_2/CoOp/cpu_tiny/seed1")["subsample_classes"] == "new"


def test_a_submission_sbatch_refuses_is_named_in_two_lines(slurm, tmp_path, tiny_clip_path, capsys):
    root, yamls = make_two_datasets(str(tmp_path))
    argv = pipeline_argv(root, yamls, tmp_path / "out", tiny_clip_path, seeds=(1,))
    refused = ["--stages", "host-train", *ON_THE_TEST_NODE, "--slurm-partition", "nope"]
    assert pipeline_main_reporting(argv + refused) == 2
    error = capsys.readouterr().err
    assert "error: sbatch refused the host-train array of 2 run(s)" in error and "invalid partition" in error


def pipeline_main_reporting(argv):
    """``python -m tools.pipeline ARGV``'s exit status, bad inputs reported as the command reports them."""
    return run_reporting_bad_input(lambda: pipeline.main(argv), program="python -m tools.pipeline")


def latest_epoch(run_dir):
    try:
        with open(os.path.join(run_dir, "prompt_learner", "checkpoint")) as f:
            return int(re.search(r"(\d+)\s*$", f.read()).group(1))
    except (OSError, AttributeError):
        return 0


def wait_until(condition, what, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_requeued_and_cancelled_jobs_resume_and_a_new_pipeline_follows_running_ones(slurm, tmp_path,
                                                                                    tiny_clip_path, capsys):
    """Two long host trainings, A and B. A is signalled as Slurm signals a job about to be preempted or timed out:
    submitit requeues it and it resumes. B is cancelled with scancel. The pipeline is killed, and run again: it
    follows A's job, which is still running, and submits B again, which resumes from its checkpoint."""
    root, (shapes_a, _) = make_two_datasets(str(tmp_path))
    out = tmp_path / "out"
    argv = pipeline_argv(root, [shapes_a], out, tiny_clip_path, seeds=(1, 2), epochs=250) + [
        "--stages", "host-train", *ON_THE_TEST_NODE]
    first = subprocess.Popen([sys.executable, "-m", "tools.pipeline", *argv], cwd=REPO_DIR,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        a, b = (out / f"base2new/train_base/shapes_a/shots_2/CoOp/cpu_tiny/seed{seed}" for seed in (1, 2))
        wait_until(lambda: latest_epoch(a) >= 3 and latest_epoch(b) >= 3, "both runs to train a few epochs")
        job_a, job_b = read_job_record(a)["job_id"], read_job_record(b)["job_id"]
        slurm.run("scancel", job_b)
        slurm.run("scancel", "--signal=USR2", job_a)
        output_a = a / "pipeline_output.txt"
        wait_until(lambda: output_a.read_text().count(f"slurm job {job_a} on") == 2, "A's second attempt")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert "requeued; train.py resumes from the last checkpoint" in output_a.read_text()

    assert pipeline.main(argv) == 0  # in this process: it starts at once, while A's job still runs
    printed = capsys.readouterr().out
    assert f"[running 1/2] {a.relative_to(out)}: job {job_a}" in printed and "not submitted again" in printed
    assert "2 runs: 2 ran, 0 already finished (skipped), 0 failed, 0 blocked" in printed
    assert read_job_record(a)["job_id"] == job_a  # followed, not submitted twice
    assert read_job_record(b)["job_id"] != job_b  # cancelled, submitted again
    for run in (a, b):
        output = (run / "pipeline_output.txt").read_text()
        resumed = [int(epoch) for epoch in re.findall(r"Previous epoch: (\d+)", output)]
        assert resumed and resumed[-1] >= 3, f"{run} did not resume from its checkpoint"
        assert read_results(run)["n"] == 6 and latest_epoch(run) == 250
