"""Config keys without torch: ``ConfigError``, dotted keys (``TRAINER.DPC.TOPK``) on a config or a plain mapping,
and the ``_BASE_`` chain of a config file. The run primitives, the engine and every layer above read keys here.
"""
from __future__ import annotations

import os
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file, key or value that cannot be used; raised before any run is touched."""


# ---- dotted keys (``TRAINER.DPC.TOPK``; "" is the config itself) on a config or on a plain mapping -----------

def _parts(dotted):
    return dotted.split(".") if dotted else []


def get_key(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in _parts(dotted):
        node = node[part]
    return node


def has_key(cfg: Any, dotted: str) -> bool:
    node = cfg
    for part in _parts(dotted):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def set_key(cfg: Any, dotted: str, value: Any) -> None:
    parent, _, leaf = dotted.rpartition(".")
    setattr(get_key(cfg, parent), leaf, value)


# ---- config files ---------------------------------------------------------------------------------------

BASE_KEY = "_BASE_"  # an alias file names the config it extends (a path relative to the alias file)


def config_file_chain(path: str, chain: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The yaml mappings that ``path`` stands for, its ``_BASE_`` chain first, each as ``(path, mapping)``.
    A file with a top-level ``_BASE_: <path>`` (relative to the file) is an alias: the named config comes
    first, then the file's own keys (``configs/trainers/SPLE/`` holds such aliases for the reference code's
    config paths)."""
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path}" + (f" (the {BASE_KEY} of {chain[-1]})" if chain else ""))
    if os.path.abspath(path) in chain:
        raise ConfigError(f"{path}: {BASE_KEY} chain loops back to itself ({' -> '.join(chain)})")
    try:
        with open(path) as f:
            content = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path} does not hold a mapping of config keys")
    base = content.pop(BASE_KEY, None)
    if base is None:
        return [(path, content)]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {BASE_KEY} must be the path of a config file, got {base!r}")
    return config_file_chain(os.path.join(os.path.dirname(path), base), (*chain, os.path.abspath(path))) + [
        (path, content)]
