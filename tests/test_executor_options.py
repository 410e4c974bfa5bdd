"""The executor flags of the pipeline and the scripts, and what ``--executor slurm --dry-run`` shows without a
cluster: the job arrays a stage each, and the #SBATCH lines that carry the resources."""
import os
import subprocess
import sys

import pytest
from support.paths import REPO_DIR

from tools.pipeline import cli as pipeline
from tools.pipeline.executors.slurm_resources import SlurmResources, minutes, sbatch_options
from trainers.run.config_keys import ConfigError


def dry_run(capsys, tmp_path, *flags):
    argv = ["--host", "CoOp", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--datasets", "caltech101", "dtd", "--seeds", "1", "2", "--host-config", "cpu_tiny",
            "--dpc-config", "cpu_tiny", *flags, "--dry-run"]
    assert pipeline.main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_slurm_dry_run_shows_an_array_per_stage_with_its_resources(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no Slurm command reachable: nothing is asked of a cluster
    lines = dry_run(capsys, tmp_path, "--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "1-02:30",
                    "--slurm-mem", "32G", "--slurm-account", "lab", "--slurm-array-parallelism", "3",
                    "--slurm-extra", "qos=high", "constraint=a100")
    common = lines[lines.index("# every job:") + 1:]
    for flag in ("--partition=gpu", "--time=1590", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32G",
                 "--account=lab", "--array=0-3%3", "--qos=high", "--constraint=a100", "--requeue", "--signal=USR2@90",
                 f"--chdir={REPO_DIR}", f"--output={tmp_path}/out/slurm/%A_%a_0_log.out"):
        assert f"#   #SBATCH {flag}" in common, flag
    arrays = [line for line in lines if line.startswith("# ") and "--job-name=" in line]
    assert arrays == ["# host-train: 4 runs: --job-name=CoOp-host-train",
                      "# host-test: 4 runs, each once its host-train run has finished: --job-name=CoOp-host-test",
                      "# dpc-train: 4 runs, each once its host-train run has finished: --job-name=DPC_CoOp-dpc-train",
                      "# dpc-test: 4 runs, each once its dpc-train run has finished: --job-name=DPC_CoOp-dpc-test"]
    commands = [line for line in lines if line.startswith("python train.py")]
    assert len(commands) == 16 and "--trainer CoOp" in commands[0] and "--eval-only" in commands[4]
    assert not os.path.exists(tmp_path / "out")  # a dry run writes nothing


def test_local_dry_run_says_where_the_runs_go(tmp_path, capsys):
    lines = dry_run(capsys, tmp_path, "--executor", "local", "--gpus", "0,1", "--jobs-per-gpu", "2")
    assert lines[1].startswith("# local executor: 4 runs at a time on GPU 0 x2, GPU 1 x2;")
    serial = dry_run(capsys, tmp_path)
    assert [line for line in lines if not line.startswith("# local")] == serial  # the same runs


def test_bad_executor_flags_are_named_before_anything_runs(tmp_path, capsys):
    for flags, message in ((["--slurm-partition", "gpu"], "--slurm-partition: option(s) of --executor slurm"),
                           (["--executor", "slurm", "--slurm-time", "soon"], "--slurm-time takes minutes"),
                           (["--executor", "slurm", "--slurm-extra", "qos"], "--slurm-extra takes KEY=VALUE"),
                           (["--executor", "local", "--gpus", "0,,1"], "--gpus takes device names")):
        with pytest.raises(SystemExit) as stop:
            dry_run(capsys, tmp_path, *flags)
        assert stop.value.code == 2 and message in capsys.readouterr().err, flags


def test_slurm_time_and_options_are_read_as_sbatch_reads_them():
    assert [minutes(t) for t in ("90", "90:30", "4:00:00", "2-0", "1-02:30", "1-00:00:01")] == \
        [90, 91, 240, 2880, 1590, 1441]
    assert sbatch_options(["gres=gpu:a100:1", "--qos=high"]) == {"gres": "gpu:a100:1", "qos": "high"}
    with pytest.raises(ConfigError):
        SlurmResources(cpus_per_run=0)
    parameters = SlurmResources(gpus_per_run=0).submitit_parameters("job")
    assert "gpus_per_node" not in parameters and parameters["additional_parameters"]["requeue"] is True


@pytest.mark.slow
def test_the_scripts_pass_executor_variables_through(tmp_path):
    env = {**os.environ, "DATA": str(tmp_path / "data"), "OUTPUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "EXECUTOR": "slurm", "PARTITION": "gpu", "TIME_LIMIT": "8:00:00", "GPUS_PER_RUN": "2",
           "SLURM_EXTRA": "qos=high constraint=a100"}
    script = ["bash", "scripts/reproduce_base2new.sh", "CoOp", "--dry-run", "--", "--datasets", "dtd", "--seeds", "1",
              "--stages", "host-train"]
    done = subprocess.run(script, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for flag in ("--partition=gpu", "--time=480", "--gpus-per-node=2", "--qos=high", "--constraint=a100"):
        assert f"#SBATCH {flag}" in done.stdout, flag
    env.update(EXECUTOR="local", GPUS="0,1,2,3", JOBS_PER_GPU="2")
    for name in ("PARTITION", "TIME_LIMIT", "GPUS_PER_RUN", "SLURM_EXTRA"):
        del env[name]
    done = subprocess.run(script, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "# local executor: 8 runs at a time on GPU 0 x2, GPU 1 x2, GPU 2 x2, GPU 3 x2" in done.stdout
