"""One ``train.py`` run: its main, identity and ``results.json`` record, checkpoints, the run lock, finished runs,
the console log, bad-input errors, ``torchrun`` processes and random-generator state."""
