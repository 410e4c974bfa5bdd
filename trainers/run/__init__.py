"""Run primitives, below the engine: config keys without torch (``config_keys``), the ``results.json`` record,
checkpoint files, the run lock, the console log, bad-input errors, stop signals, ``torchrun`` processes and
random-generator state."""
