"""Slots for runs: how many runs each device takes at a time, and which device a starting run gets."""
UNASSIGNED = None  # a slot with no device of its own: its run sees what the pipeline sees (the CPU without GPUs)


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
