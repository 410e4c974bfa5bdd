"""``DataManager``, ``DatasetWrapper`` and ``build_dataset``: Dassl's data loading, built in."""
import torch
from PIL import Image
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler

from datasets.runtime.registry import Registry, check_availability
from datasets.runtime.transforms import build_transform

DATASET_REGISTRY = Registry("DATASET")

SAMPLERS = {"RandomSampler": RandomSampler, "SequentialSampler": SequentialSampler}


def build_dataset(cfg):
    check_availability(cfg.DATASET.NAME, DATASET_REGISTRY.registered_names(), kind="dataset")
    if cfg.VERBOSE:
        print(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)


def read_image(path):
    """Read an RGB image; a missing file raises FileNotFoundError naming it."""
    try:
        return Image.open(path).convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"Image listed in the dataset split is missing on disk: {path}") from None


class DatasetWrapper(Dataset):
    def __init__(self, cfg, data_source, transform=None, is_train=False):
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train

    def __len__(self):
        return len(self.data_source)

    def __getitem__(self, idx):
        item = self.data_source[idx]
        img = read_image(item.impath)
        if self.transform is not None:
            img = self.transform(img)
        return {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx, "img": img}


def build_data_loader(cfg, sampler_type="SequentialSampler", data_source=None, batch_size=64,
                      tfm=None, is_train=True, dataset_wrapper=None, **unused):
    if sampler_type not in SAMPLERS:
        raise ValueError(f"Sampler {sampler_type!r} needs Dassl; the built-in runtime has {list(SAMPLERS)}")
    wrapper = (dataset_wrapper or DatasetWrapper)(cfg, data_source, transform=tfm, is_train=is_train)
    loader = DataLoader(
        wrapper,
        batch_size=batch_size,
        sampler=SAMPLERS[sampler_type](wrapper),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(data_source) >= batch_size,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
        # Workers start anew every epoch, as in Dassl: their seeds are then drawn from the main process's
        # generator at the epoch's start, which checkpoints restore, so a resumed run repeats the data exactly.
    )
    if len(loader) == 0:
        raise ValueError(f"Empty data loader: the split has {len(data_source)} items")
    return loader


class DataManager:
    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        tfm_train = custom_tfm_train or build_transform(cfg, is_train=True)
        tfm_test = custom_tfm_test or build_transform(cfg, is_train=False)

        def loader(data, sampler, batch_size, tfm, is_train):
            return build_data_loader(cfg, sampler_type=sampler, data_source=data, batch_size=batch_size,
                                     tfm=tfm, is_train=is_train, dataset_wrapper=dataset_wrapper)

        self.train_loader_x = loader(dataset.train_x, cfg.DATALOADER.TRAIN_X.SAMPLER,
                                     cfg.DATALOADER.TRAIN_X.BATCH_SIZE, tfm_train, True)
        self.train_loader_u = None
        self.val_loader = None
        if dataset.val:
            self.val_loader = loader(dataset.val, cfg.DATALOADER.TEST.SAMPLER,
                                     cfg.DATALOADER.TEST.BATCH_SIZE, tfm_test, False)
        self.test_loader = loader(dataset.test, cfg.DATALOADER.TEST.SAMPLER,
                                  cfg.DATALOADER.TEST.BATCH_SIZE, tfm_test, False)

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset  # (Dassl's DataManager keeps no transforms: neither does this one)
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self._lab2cname

    def show_dataset_summary(self, cfg):
        rows = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            rows.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            rows.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        rows.append(["# classes", f"{self.num_classes:,}"])
        rows.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.val:
            rows.append(["# val", f"{len(self.dataset.val):,}"])
        rows.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(rows))
