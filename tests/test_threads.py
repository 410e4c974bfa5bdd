"""CPU threads that fit the machine: --threads, then OMP_NUM_THREADS, then the free cores (divided among the
pipeline's concurrent runs, which its children see through OMP_NUM_THREADS)."""
import os

import pytest
import torch
from test_executor_local import fake_python, host_trainings

from tools.pipeline.executors.devices import local_slots
from tools.pipeline.executors.processes import LocalExecutor, SerialExecutor
from tools.pipeline.runner import execute
from trainers.launch.main import cpu_threads
from trainers.run import threads


@pytest.fixture
def four_cores_load_one(monkeypatch):
    """A 4-core machine with one core kept busy by another process; OMP_NUM_THREADS unset."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.8, 0.5))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_the_flag_then_the_environment_then_the_free_cores(four_cores_load_one, monkeypatch):
    assert threads.choose_threads() == (3, "4 cores available, load 1")
    assert threads.choose_threads(jobs=2) == (1, "4 cores available, load 1, 3 free for 2 concurrent runs")
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert threads.choose_threads()[0] == 1  # never fewer than one
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads() == (2, "OMP_NUM_THREADS")
    assert threads.choose_threads(requested=5) == (5, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a count torch takes either: the free cores decide
    assert threads.choose_threads()[0] == 1


def test_a_cpu_run_sets_torchs_threads_and_logs_why(four_cores_load_one):
    before = torch.get_num_threads()
    try:
        line = cpu_threads(0, on_gpu=False)
        assert torch.get_num_threads() == 3
        assert line.startswith("CPU threads: 3 (4 cores available, load 1; --threads N or OMP_NUM_THREADS=N")
        assert cpu_threads(2, on_gpu=False).startswith("CPU threads: 2 (--threads") and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("executor, expected", [(lambda python: SerialExecutor(python=python), "3"),
                                                (lambda python: LocalExecutor(local_slots(jobs=3, environ={
                                                    "CUDA_VISIBLE_DEVICES": ""}), python=python), "1")])
def test_pipeline_children_see_their_share(tmp_path, four_cores_load_one, executor, expected):
    """3 free cores: a serial child gets all three, each of three concurrent children one."""
    python, log = fake_python(tmp_path, 'echo "$OMP_NUM_THREADS" > $LOG/$$\nexit 1')
    execute(host_trainings(str(tmp_path), seeds=(1, 2, 3)), executor=executor(python), progress=False,
            echo=lambda line: None)
    seen = [(log / name).read_text().strip() for name in os.listdir(log)]
    assert seen == [expected] * 3
