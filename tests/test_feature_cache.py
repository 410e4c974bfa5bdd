"""The test-feature cache: exact (same logits with and without it), shared by the runs of one frozen image
encoder, missed when the backbone, the transform or the image changes, and safe with parallel writers."""
import multiprocessing
import os
import shutil

import pytest
import torch
from support.hosts import cpu_yaml
from support.runs import COOP_CPU_YAML, run_train, train_argv

from trainers.evaluation.feature_cache import FeatureCache


@pytest.fixture(scope="module")
def world(tmp_path_factory, shapes12, coop_stage1, tiny_clip_path):
    """The session's CoOp stage 1 (6 base shape classes), evaluated on a copy of its data (a test here touches an
    image file); test batch 5 so that the test has a short last batch."""
    tmp = tmp_path_factory.mktemp("feature_cache")
    root = str(tmp / "data")
    shutil.copytree(shapes12, root)
    return {"root": root, "clip": tiny_clip_path, "tmp": tmp, "stage1": coop_stage1}


def evaluate(world, trainer, name, *opts, cache=None):
    """A ``--eval-only`` run of ``trainer`` (CoOp, DPC over it, zero-shot) on the base classes' test split."""
    flags = {"CoOp": ("--model-dir", world["stage1"], "--load-epoch", 2), "ZeroshotCLIP": ()}.get(trainer, ())
    config = {"DPC": "configs/trainers/DPC/cpu_tiny.yaml", "CoCoOp": cpu_yaml("CoCoOp"),
              "KgCoOp": cpu_yaml("KgCoOp")}.get(trainer, COOP_CPU_YAML)  # (those two with untrained prompts)
    return run_train(*train_argv(trainer, world["root"], world["clip"], world["tmp"] / name,
                                 "DATALOADER.TEST.BATCH_SIZE", 5, "TEST.FEATURE_CACHE", cache or "", *opts,
                                 flags=("--eval-only", *flags), config_file=config, epochs=None, print_freq=None))


def logits_and_counts(trainer):
    """Every test batch's logits, and the cache's counts (read, encoded) for that pass."""
    batches = trainer.test_logits(trainer.test_loader)
    logits = torch.cat([logits for logits, _ in batches])
    cache = batches.cache
    return logits, None if cache is None else (cache.read, cache.encoded)


DPC_OVER_COOP = ("TRAINER.DPC.HOST", "CoOp", "TRAINER.DPC.WEIGHT_NEW", 0.5)


@pytest.mark.parametrize("trainer", ["CoOp", "ZeroshotCLIP", "DPC", "KgCoOp", "CoCoOp"])
def test_cached_logits_equal_uncached_and_runs_share_entries(world, trainer, tmp_path):
    cache = tmp_path / "cache"
    opts = ("TRAINER.DPC.BACKBONE_DIR", world["stage1"], *DPC_OVER_COOP) if trainer == "DPC" else ()
    plain = evaluate(world, trainer, f"{trainer}_plain", *opts)
    expected, counts = logits_and_counts(plain)
    n = len(plain.test_loader.dataset)
    assert counts is None and n % 5 != 0  # a short last batch, encoded in a batch of its own size

    cached = evaluate(world, trainer, f"{trainer}_cached", *opts, cache=cache)  # its own test filled the cache
    fresh = tmp_path / "fresh"
    for folder, expected_counts in ((cache, (n, 0)), (fresh, (0, n)), (fresh, (n, 0))):
        cached.cfg.defrost()
        cached.cfg.TEST.FEATURE_CACHE = str(folder)
        logits, counts = logits_and_counts(cached)
        assert counts == expected_counts
        assert torch.equal(logits, expected)

    other = "ZeroshotCLIP" if trainer != "ZeroshotCLIP" else "CoOp"  # another method over the same frozen CLIP
    shared = evaluate(world, other, f"{trainer}_{other}", cache=cache)
    assert logits_and_counts(shared)[1] == (n, 0)


def counts_after(trainer):
    return logits_and_counts(trainer)[1]


def test_changed_backbone_transform_or_image_is_a_miss(world, tmp_path):
    cache = tmp_path / "cache"
    trainer = evaluate(world, "CoOp", "miss", cache=cache)
    n = len(trainer.test_loader.dataset)
    assert counts_after(trainer) == (n, 0)  # the run itself filled it

    proj = trainer.model.image_encoder.visual.proj
    original = proj.detach().clone()
    with torch.no_grad():
        proj.add_(1e-4)
    assert counts_after(trainer) == (0, n)
    with torch.no_grad():
        proj.copy_(original)
    assert counts_after(trainer) == (n, 0)

    transform = trainer.test_loader.dataset.transform
    normalize = transform.transforms[-1]
    normalize.mean = [m + 0.01 for m in normalize.mean]
    assert counts_after(trainer) == (0, n)
    normalize.mean = [m - 0.01 for m in normalize.mean]

    first = trainer.test_loader.dataset.data_source[0].impath
    os.utime(first, ns=(os.stat(first).st_atime_ns, os.stat(first).st_mtime_ns + 10 ** 9))
    read, encoded = counts_after(trainer)
    assert encoded == 5 and read == n - 5  # the first batch only, encoded whole


def test_an_unreadable_entry_is_encoded_again_and_rewritten(world, tmp_path, capsys):
    """An empty and a truncated entry (a full disk under an older release, a partial copy): each is named in one
    line, its batch is encoded again (the same logits, bit for bit) and the entry is rewritten whole."""
    cache = tmp_path / "cache"
    trainer = evaluate(world, "CoOp", "heal", cache=cache)
    expected, counts = logits_and_counts(trainer)
    n = len(trainer.test_loader.dataset)
    assert counts == (n, 0)
    items = trainer.test_loader.dataset.data_source
    store = trainer.test_logits(trainer.test_loader).cache
    empty, truncated = store.entry_path(items[0].impath, 5), store.entry_path(items[5].impath, 5)  # batches 1, 2
    open(empty, "wb").close()
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) // 2)
    capsys.readouterr()

    logits, counts = logits_and_counts(trainer)
    assert torch.equal(logits, expected) and counts == (n - 10, 10)
    out = capsys.readouterr().out
    assert f"Feature cache entry {empty} cannot be read (empty); encoding it again" in out
    assert f"Feature cache entry {truncated} cannot be read (truncated or not a tensor file: " in out
    logits, counts = logits_and_counts(trainer)  # both entries rewritten whole, with the same features
    assert counts == (n, 0) and torch.equal(logits, expected)


def _write_repeatedly(path, value, times):
    for _ in range(times):
        FeatureCache.store(path, torch.full((512,), float(value)))


def test_parallel_writers_leave_only_complete_entries(tmp_path):
    path = str(tmp_path / "ab" / "entry.pt")
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_repeatedly, args=(path, value, 200)) for value in (1, 2, 3)]
    for writer in writers:
        writer.start()
    seen = set()
    while any(writer.is_alive() for writer in writers):
        if os.path.exists(path):
            features = FeatureCache.load(path)  # never a partial file
            assert features.shape == (512,) and len(set(features.tolist())) == 1
            seen.add(features[0].item())
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert seen <= {1.0, 2.0, 3.0} and FeatureCache.load(path)[0].item() in (1.0, 2.0, 3.0)
    assert os.listdir(tmp_path / "ab") == ["entry.pt"]  # no temporary file left behind


def test_a_test_encodes_text_once_and_gives_the_models_own_logits(world):
    trainer = evaluate(world, "CoOp", "text_once")
    assert len(trainer.test_loader) > 2
    calls = []
    hook = trainer.model.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    logits, _ = logits_and_counts(trainer)
    hook.remove()
    assert len(calls) == 1  # all classes' text features, once for the whole test
    with torch.no_grad():
        per_batch = torch.cat([trainer.model(trainer.parse_batch_test(batch)[0]) for batch in trainer.test_loader])
    assert torch.equal(logits, per_batch)
