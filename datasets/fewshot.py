"""Few-shot sampling, its cache in ``split_fewshot/``, and base/new class subsampling (docs/DATASETS.md)."""
import hashlib
import json
import math
import os
import random

from datasets.datum_pickle import UnreadableCacheError, load_datum_pickle, relative_to, save_datum_pickle
from datasets.split_checks import check_cache_entries
from datasets.splits import group_indices_by_label, verify_images_exist
from datasets.toolbox import make_datum

SUBSAMPLE_CHOICES = ("all", "base", "new")


def generate_fewshot_dataset(*data_sources, num_shots=-1, repeat=False):
    """Per label (first-appearance order): ``random.sample(items, K)``, or all items when fewer than K."""
    if num_shots < 1:
        return data_sources[0] if len(data_sources) == 1 else data_sources
    print(f"Creating a {num_shots}-shot dataset")
    outputs = []
    for data_source in data_sources:
        sampled = []
        for idxs in group_indices_by_label(data_source).values():
            items = [data_source[i] for i in idxs]
            if len(items) >= num_shots:
                sampled.extend(random.sample(items, num_shots))
            else:
                sampled.extend(random.choices(items, k=num_shots) if repeat else items)
        outputs.append(sampled)
    return outputs[0] if len(outputs) == 1 else outputs


def subsample_classes(*args, subsample="all"):
    """Keep the first ceil(n/2) labels of ``args[0]`` (base) or the rest (new), relabelled from 0."""
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be one of {SUBSAMPLE_CHOICES}, got {subsample!r}")
    if subsample == "all":
        return args
    labels = sorted({item.label for item in args[0]})
    m = math.ceil(len(labels) / 2)
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabeler = {old: new for new, old in enumerate(selected)}
    return tuple(
        [make_datum(impath=item.impath, label=relabeler[item.label], classname=item.classname)
         for item in dataset if item.label in relabeler]
        for dataset in args
    )


# ---------------------------------------------------------------------------------------------------------
# The cache. Files keep Dassl's format (a dict of Datum lists, Datums pickled under Dassl's class path), so
# the reference code can read what we write, plus two keys Dassl ignores: ``dataset_dir`` (to re-root
# absolute paths when $DATA moves) and ``split_sha1`` (to refuse a cache written for another split).


def fewshot_cache_path(dataset_dir, num_shots, seed, folder="split_fewshot"):
    return os.path.join(dataset_dir, folder, f"shot_{num_shots}-seed_{seed}.pkl")


def split_fingerprint(dataset_dir, *splits):
    """A hash of the (relative path, label, class name) entries of the splits the cache was sampled from."""
    entries = [[(relative_to(d.impath, dataset_dir), d.label, d.classname) for d in split] for split in splits]
    return hashlib.sha1(json.dumps(entries).encode()).hexdigest()


def load_fewshot_cache(path, dataset_dir, fingerprint):
    """The cached splits, or None when the cache cannot be read or belongs to another split (it is then drawn
    again and rewritten)."""
    try:
        data = load_datum_pickle(path, dataset_dir)
    except UnreadableCacheError as err:  # empty or truncated (a disk that filled up under an older release)
        print(f"Few-shot cache {path} cannot be read ({err.reason}); drawing it again and rewriting it")
        return None
    stored = data.get("split_sha1")
    if stored is not None and stored != fingerprint:
        print(f"Few-shot cache {path} was sampled from a different split; sampling again")
        return None
    return data


def check_fewshot_cache(path, dataset_dir, data, sources, verify=True):
    """Every cached datum is an entry of the split list it was drawn from (a cache is a pickle anyone can edit,
    and one written before ``split_sha1`` existed is not fingerprinted); ``verify``: its images are on disk."""
    def entries(items):
        return {(relative_to(d.impath, dataset_dir), d.label, d.classname) for d in items}

    for key, source in sources.items():
        if source is not None and isinstance(data.get(key), list):
            if verify:  # the likelier cause first
                verify_images_exist(data[key], hint=f" (listed in {path}; delete it to draw again)")
            check_cache_entries(f"Few-shot cache {path}", {key: data[key]}, entries(source),
                                lambda impath: relative_to(impath, dataset_dir), "; delete it to draw again")


def save_fewshot_cache(path, splits, dataset_dir, fingerprint):
    save_datum_pickle(path, dict(splits, dataset_dir=dataset_dir, split_sha1=fingerprint))


def fewshot_splits(dataset_dir, num_shots, seed, train, val=None, cache_folder="split_fewshot", verify=True):
    """The reference few-shot step with its cache (in ``cache_folder``): K per class for train, min(K, 4) for val;
    ``verify``: a cached draw's images must be on disk."""
    if num_shots < 1:
        return train, val
    path = fewshot_cache_path(dataset_dir, num_shots, seed, cache_folder)
    sources = (train,) if val is None else (train, val)
    fingerprint = split_fingerprint(dataset_dir, *sources)
    if os.path.exists(path):
        print(f"Loading preprocessed few-shot data from {path}")
        data = load_fewshot_cache(path, dataset_dir, fingerprint)
        if data is not None:
            check_fewshot_cache(path, dataset_dir, data, {"train": train, "val": val}, verify)
            return data["train"], data.get("val") if val is not None else None
    train = generate_fewshot_dataset(train, num_shots=num_shots)
    splits = {"train": train}
    if val is not None:
        val = generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
        splits["val"] = val
    print(f"Saving preprocessed few-shot data to {path}")
    save_fewshot_cache(path, splits, dataset_dir, fingerprint)
    return train, val
