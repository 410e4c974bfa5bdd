"""Helpers for the host tests: the shipped hosts, their CPU configs, and host models on a tiny CLIP."""
import torch

from trainers.engine import TRAINER_REGISTRY
from trainers.engine.config import build_cfg
from trainers.host_api.host_trainer import host_model_class, registered_hosts
from trainers.host_api.interface import build_host as build_host_model
from trainers.prompted_clip import build_tiny_clip

# The hosts this repository ships (tests may register hosts of their own: those are not listed here).
HOSTS = tuple(h for h in registered_hosts() if TRAINER_REGISTRY.get(h).__module__.startswith("trainers.hosts."))
CLASSNAMES = ["red circle", "green square", "blue_triangle", "yellow circle"]
CPU_CONFIGS = {}  # host -> its CPU config, for a host defined by a test (a shipped host's lives in configs/)


def cpu_yaml(host):
    return CPU_CONFIGS.get(host, f"configs/trainers/{host}/cpu_tiny.yaml")


def host_cfg(host, *opts):
    return build_cfg([cpu_yaml(host)], opts, trainer=host)


def build_host(host, *opts, clip_model=None, classnames=CLASSNAMES, seed=0):
    """``host``'s model as its trainer and DPC build it, on a tiny fp32 CLIP."""
    torch.manual_seed(seed)
    clip_model = clip_model if clip_model is not None else build_tiny_clip()
    return build_host_model(host_model_class(host), host_cfg(host, *opts), classnames, clip_model)


def random_images(n=3, seed=0, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
