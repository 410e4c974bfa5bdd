"""The devices the local executor runs on, and how many runs each one takes at a time."""
import os

from trainers.run.config_keys import ConfigError

UNASSIGNED = None  # a slot with no device of its own: its run sees what the pipeline sees (the CPU without GPUs)


def visible_gpus(environ=None):
    """The CUDA devices this process may use, named as ``CUDA_VISIBLE_DEVICES`` names them (indices, UUIDs or
    MIG names: a child given one name sees exactly that device), else ``0 .. n-1``."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        import torch

        return [str(index) for index in range(torch.cuda.device_count())]
    devices = []
    for name in listed.split(","):
        name = name.strip()
        if not name or name == "-1":  # CUDA ignores the list from its first invalid entry on
            break
        devices.append(name)
    return devices


def parse_gpu_list(text):
    """``--gpus 0,1,3`` -> ["0", "1", "3"]."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--gpus takes device names separated by commas (e.g. 0,1,2,3); got {text!r}")
    return names


class DeviceSlots:
    """At most ``per_device`` runs on each device and ``total`` in all; a run takes the least busy device (the
    first listed among equals), so runs spread over the GPUs before any GPU gets a second one."""

    def __init__(self, devices, per_device=1, total=None):
        self.devices = list(devices)
        self.per_device = per_device
        self.size = min(total or per_device * len(self.devices), per_device * len(self.devices))
        self.busy = dict.fromkeys(self.devices, 0)

    def free(self):
        return sum(self.busy.values()) < self.size

    def take(self):
        device = min(self.devices, key=lambda d: self.busy[d])  # min keeps the first of equals
        if not self.free() or self.busy[device] >= self.per_device:
            raise RuntimeError("no free slot")  # the scheduler asks free() first
        self.busy[device] += 1
        return device

    def give_back(self, device):
        self.busy[device] -= 1

    def describe(self):
        if self.devices == [UNASSIGNED]:
            return f"{self.size} run{'s' if self.size > 1 else ''} at a time on the CPU"
        each = "" if self.per_device == 1 else f" x{self.per_device}"
        return f"{self.size} runs at a time on " + ", ".join(f"GPU {d}{each}" for d in self.devices)


def local_slots(gpus=None, jobs_per_gpu=None, jobs=None, environ=None):
    """The slots of ``--executor local``: ``jobs_per_gpu`` runs on each of ``gpus`` (default: every visible GPU),
    at most ``jobs`` in all (``jobs`` alone spreads that many over the GPUs); without a GPU, ``jobs`` runs on
    the CPU (default 1)."""
    for flag, value in (("--jobs-per-gpu", jobs_per_gpu), ("--jobs", jobs)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} takes a positive number; got {value}")
    devices = gpus if gpus is not None else visible_gpus(environ)
    if devices:
        per_device = jobs_per_gpu or (-(-jobs // len(devices)) if jobs else 1)
        return DeviceSlots(devices, per_device=per_device, total=jobs)
    if jobs_per_gpu is not None:
        raise ConfigError("--jobs-per-gpu: no GPU is visible here (CUDA_VISIBLE_DEVICES, torch.cuda); "
                          "on the CPU, --jobs N runs N at a time")
    return DeviceSlots([UNASSIGNED], per_device=jobs or 1)
