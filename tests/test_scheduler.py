"""The scheduler over the executor seam, without training: when runs start, in which order, and what a failure
blocks, with several runs at a time. A simulated pool stands in for train.py processes: each run takes a set
time on a simulated clock and then writes the record train.py would write."""
import pytest
from support.records import mark_finished

from tools.pipeline.executors.base import Executor, Exit
from tools.pipeline.executors.order import longest_chain_first, plan_order
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import BLOCKED, FAILED, RAN, execute, summarize


class SimulatedPool(Executor):
    """``slots`` runs at a time; a run lasts ``duration(run)`` and fails (exit 1) on a dataset named broken."""

    def __init__(self, slots, duration=lambda run: 1, ordering=longest_chain_first):
        self.slots, self.duration, self.ordering = slots, duration, ordering
        self.now, self.running, self.started = 0, {}, {}

    def has_room(self):
        return len(self.running) < self.slots

    def start(self, run, output_file):
        self.started[run.key] = self.now
        self.running[run.key] = (self.now + self.duration(run), run)
        return ""

    def wait(self, say):
        end, run = min(self.running.values(), key=lambda item: item[0])
        del self.running[run.key]
        self.now = end
        if run.dataset == "broken":
            return [(run, Exit(1))]
        mark_finished(run)
        return [(run, Exit(0))]


def plan(tmp_path, datasets, seeds=(1,)):
    for name in datasets:
        (tmp_path / f"{name}.yaml").write_text(f'DATASET:\n  NAME: "ImageFolder"\n  FOLDER: "{name}"\n')
    spec = Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), seeds=list(seeds),
                datasets=[str(tmp_path / f"{name}.yaml") for name in datasets], host_config="cpu_tiny",
                dpc_config="cpu_tiny")
    return build_plan(spec, warn=lambda m: None)


def quietly(runs, executor):
    return execute(runs, executor=executor, progress=False, echo=lambda line: None)


def key(runs, dataset, stage):
    return next(run.key for run in runs if run.dataset == dataset and run.stage == stage)


def test_a_run_starts_when_its_needs_are_done_and_a_slot_is_free_without_waiting_for_the_others(tmp_path):
    runs = plan(tmp_path, ["long", "short"])
    pool = SimulatedPool(2, duration=lambda run: 10 if (run.dataset, run.stage) == ("long", "host-train") else 1)
    assert all(o.status == RAN for o in quietly(runs, pool))
    started = pool.started
    assert started[key(runs, "long", "host-train")] == started[key(runs, "short", "host-train")] == 0
    # short's DPC training takes the free slot at once, its tests follow: no batch barrier waits for long
    assert started[key(runs, "short", "dpc-train")] == 1
    assert sorted(started[key(runs, "short", s)] for s in ("host-test", "dpc-test")) == [2, 3]
    assert started[key(runs, "long", "dpc-train")] == 10
    assert pool.now == 12  # long's chain, 10 + 1 + 1, is the critical path: nothing idles past it


def test_the_longest_chains_start_first(tmp_path):
    runs = plan(tmp_path, ["a", "b"], seeds=(1, 2))
    pool = SimulatedPool(1)
    quietly(runs, pool)
    order = sorted(pool.started, key=pool.started.get)
    stage_of = {run.key: run.stage for run in runs}
    # the host trainings head the longest chains, then the DPC trainings; the tests end them
    assert [stage_of[k] for k in order] == ["host-train"] * 4 + ["dpc-train"] * 4 + ["host-test", "dpc-test"] * 4
    ranks = longest_chain_first(runs)
    assert ranks[key(runs, "a", "host-train")] < ranks[key(runs, "a", "dpc-train")] < ranks[key(runs, "a", "dpc-test")]


def test_with_the_plan_order_one_slot_runs_the_stages_of_each_dataset_in_turn(tmp_path):
    runs = plan(tmp_path, ["a", "b"])
    pool = SimulatedPool(1, ordering=plan_order)
    quietly(runs, pool)
    assert sorted(pool.started, key=pool.started.get) == [run.key for run in runs]


def test_a_failure_blocks_only_its_dependants_while_the_other_runs_go_on(tmp_path):
    runs = plan(tmp_path, ["broken", "good"], seeds=(1, 2))
    outcomes = quietly(runs, SimulatedPool(3))
    status = {(o.run.dataset, o.run.seed, o.run.stage): o.status for o in outcomes}
    for seed in (1, 2):
        assert status[("broken", seed, "host-train")] == FAILED
        assert {status[("broken", seed, s)] for s in ("host-test", "dpc-train", "dpc-test")} == {BLOCKED}
        assert {status[("good", seed, s)] for s in ("host-train", "host-test", "dpc-train", "dpc-test")} == {RAN}
    assert "16 runs: 8 ran, 0 already finished (skipped), 2 failed, 6 blocked" in summarize(outcomes)


def test_an_interrupted_pipeline_stops_its_executor(tmp_path):
    class Interrupted(SimulatedPool):
        stopped = False

        def wait(self, say):
            raise KeyboardInterrupt

        def stop(self, say):
            self.stopped = True

    pool = Interrupted(2)
    with pytest.raises(KeyboardInterrupt):
        quietly(plan(tmp_path, ["a"]), pool)
    assert pool.stopped
