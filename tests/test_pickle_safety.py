"""Loading a file never runs code from it: checkpoints and Datum caches whose pickles would call anything beyond
what such files hold are refused before it is called, unless the run trusts pickled files (and records it)."""
import json
import os
import pickle
import random

import pytest
import torch
from support.dassl_saved import dassl_training_state
from support.runs import run_train, train_argv

import train
from datasets.datum_pickle import load_datum_pickle, save_datum_pickle
from datasets.fewshot import fewshot_splits
from datasets.pickle_safety import UntrustedPickleError, trust_pickled_files, trusted_reads
from datasets.toolbox import make_datum
from trainers.run.checkpoints import load_checkpoint


class Payload:
    """What a hostile pickle carries: unpickling it calls ``os.system`` (here: creates the file ``marker``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(autouse=True)
def untrusting():
    trust_pickled_files(False)  # what every run starts with (the key's default)
    yield
    trust_pickled_files(False)


def write_coop_checkpoint(run_dir, **extra):
    """A reference-style CoOp checkpoint (4 context tokens, width 64) with ``extra`` entries beside the weights."""
    folder = run_dir / "prompt_learner"
    folder.mkdir(parents=True)
    ctx = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    torch.save({"state_dict": {"ctx": ctx}, "epoch": 1, **extra}, folder / "model.pth.tar-1")
    (folder / "checkpoint").write_text("model.pth.tar-1\n")
    return folder / "model.pth.tar-1", ctx


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, shapes_root, tiny_clip_path,
                                                                      capsys):
    marker = tmp_path / "the_payload_ran"
    path, _ = write_coop_checkpoint(tmp_path / "shared_drive", optimizer=None, scheduler=Payload(marker))
    out = tmp_path / "eval"
    argv = ["--eval-only", "--model-dir", tmp_path / "shared_drive", "--load-epoch", 1,
            *train_argv("CoOp", shapes_root, tiny_clip_path, out, subsample="new")]
    assert train.command_line([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"train.py: error: {path} asks to unpickle posix.system, which this kind of file never holds "
                      "(loading it could run code from the file); it was not loaded. If you trust where the file "
                      "comes from, rerun with TRUST_PICKLED_FILES True") and len(err) == 2
    assert not marker.exists() and not (out / "results.json").exists()


def test_a_trusted_checkpoint_loads_in_full_and_the_record_says_so(tmp_path, shapes_root, tiny_clip_path):
    marker = tmp_path / "the_payload_ran"
    path, ctx = write_coop_checkpoint(tmp_path / "mine", optimizer=None, scheduler=Payload(marker))
    out = tmp_path / "eval"
    trainer = run_train("--eval-only", "--model-dir", tmp_path / "mine", "--load-epoch", 1,
                        *train_argv("CoOp", shapes_root, tiny_clip_path, out, "TRUST_PICKLED_FILES", True,
                                    subsample="new"))
    assert marker.exists()  # trusted means loaded as pickle loads it: the user asked for exactly this
    assert torch.equal(trainer.model.prompt_learner.ctx.detach(), ctx)
    record = json.loads((out / "results.json").read_text())
    assert record["trusted_pickled_files"] == [str(path)] and record["config"]["TRUST_PICKLED_FILES"] is True


def test_the_reference_toolboxes_training_state_loads_weights_only(tmp_path):
    """Dassl saves its warm-up scheduler's state with the successor scheduler object (and its optimiser) inside."""
    state = dassl_training_state([torch.ones(4, 64)])
    path, ctx = write_coop_checkpoint(tmp_path / "coop_release", **state)
    loaded = load_checkpoint(str(path))
    assert torch.equal(loaded["state_dict"]["ctx"], ctx)
    successor = loaded["scheduler"]["successor"]
    assert type(successor) is torch.optim.lr_scheduler.CosineAnnealingLR
    assert successor.last_epoch == state["scheduler"]["successor"].last_epoch
    assert torch.equal(successor.optimizer.param_groups[0]["params"][0],
                       state["scheduler"]["successor"].optimizer.param_groups[0]["params"][0])


@pytest.mark.parametrize("hostile", ["a payload beside the schedule", "a class outside the allow-list"])
def test_nothing_beyond_the_allow_list_is_admitted(tmp_path, hostile):
    marker = tmp_path / "the_payload_ran"
    extra = {"hook": Payload(marker)} if hostile.startswith("a payload") else {"sampler": random.Random(0)}
    path, _ = write_coop_checkpoint(tmp_path / "run", **dassl_training_state([torch.ones(2)]), **extra)
    wanted = "posix.system" if hostile.startswith("a payload") else "random.Random"
    with pytest.raises(UntrustedPickleError, match=rf"^{path} asks to unpickle {wanted},"):
        load_checkpoint(str(path))
    assert not marker.exists()


def fewshot_world(tmp_path):
    dataset_dir = tmp_path / "toy"
    items = []
    for label in range(3):
        for i in range(4):
            image = dataset_dir / f"c{label}" / f"{i}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.touch()
            items.append(make_datum(impath=str(image), label=label, classname=f"class_{label}"))
    return str(dataset_dir), items


def test_a_fewshot_cache_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    dataset_dir, train_items = fewshot_world(tmp_path)
    random.seed(1)
    fewshot_splits(dataset_dir, 2, 1, train_items)  # draws and writes the cache
    cache = os.path.join(dataset_dir, "split_fewshot", "shot_2-seed_1.pkl")
    data = load_datum_pickle(cache, dataset_dir)
    marker = tmp_path / "the_payload_ran"
    with open(cache, "wb") as f:
        pickle.dump({**data, "note": Payload(marker)}, f)  # a cache "shared" with a payload
    before = open(cache, "rb").read()
    with pytest.raises(UntrustedPickleError, match=rf"^{cache} asks to unpickle posix.system,"):
        fewshot_splits(dataset_dir, 2, 1, train_items)
    assert not marker.exists()
    assert open(cache, "rb").read() == before  # refused, not "healed" over: the evidence stays

    trust_pickled_files(True)  # a user who trusts the file: loaded in full, and named
    fewshot_splits(dataset_dir, 2, 1, train_items)
    assert marker.exists() and trusted_reads() == [cache]


def test_datum_caches_written_by_dassl_or_by_us_still_load(tmp_path):
    dataset_dir, items = fewshot_world(tmp_path)
    path = os.path.join(dataset_dir, "preprocessed.pkl")
    save_datum_pickle(path, {"train": items, "test": items[:3], "dataset_dir": dataset_dir})
    trust_pickled_files(True)  # trusting changes nothing for a file that holds Datums only
    loaded = load_datum_pickle(path, dataset_dir)
    assert [(d.impath, d.label, d.classname) for d in loaded["train"]] == \
           [(d.impath, d.label, d.classname) for d in items]
    assert trusted_reads() == []
