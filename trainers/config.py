"""The project's config keys on top of Dassl's defaults (the anchors' ``extend_cfg``).

Each trainer module adds its own node with ``@config_extension``; ``extend_cfg`` applies them all.
"""
from yacs.config import CfgNode as CN

_EXTENSIONS = []


def config_extension(fn):
    _EXTENSIONS.append(fn)
    return fn


def extend_cfg(cfg):
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new (base-to-new protocol)
    cfg.DATASET.FOLDER = ""  # ImageFolder: the folder under DATASET.ROOT
    cfg.MODEL.BACKBONE.CACHE_DIR = ""  # where named CLIP weights are downloaded; "" = ~/.cache/clip
    for extend in _EXTENSIONS:
        extend(cfg)
    return cfg


def new_node(**defaults):
    node = CN()
    for key, value in defaults.items():
        setattr(node, key, value)
    return node
