"""The paper's experiments beyond its main tables, as data: the component ablation's rows and the two weight sweeps.

Shared by the pipeline (which plans their runs) and the tables (which read them back), like ``output_folders``.
A row is the settings that DPC's stage 2 runs with (``TRAINER.DPC.*`` keys, values as text, as on a command line);
the host's own row (``HOST_ROW``) is the stage-1 run itself. The mapping of the paper's rows onto the keys:
TS trains P' with the host's own loss only (no hard negatives), DHNO with the hard-negative InfoNCE; WE weights P'
on base classes (ω_b = 0.2 instead of 1); DE decouples new classes (ω_n = 0, the host's own logits, instead of the
base weight). ω_b = 1 reproduces TS+DHNO's base accuracy and ω_n = 0.2 TS+DHNO+WE's new accuracy, as the paper's
sweeps show.
"""
DHNO = "TRAINER.DPC.DHNO"
WEIGHT_BASE = "TRAINER.DPC.WEIGHT_BASE"
WEIGHT_NEW = "TRAINER.DPC.WEIGHT_NEW"

HOST_ROW = "host"  # the host alone: its stage-1 run and its own new-class test

# (row name as the paper prints it, DPC's settings); in the paper's order, after the host's own row
ABLATION_ROWS = (
    ("TS", {DHNO: "False", WEIGHT_BASE: "1.0", WEIGHT_NEW: "1.0"}),
    ("TS+DHNO", {DHNO: "True", WEIGHT_BASE: "1.0", WEIGHT_NEW: "1.0"}),
    ("TS+DHNO+WE", {DHNO: "True", WEIGHT_BASE: "0.2", WEIGHT_NEW: "0.2"}),
    ("TS+WE+DE", {DHNO: "False", WEIGHT_BASE: "0.2", WEIGHT_NEW: "0.0"}),
    ("DPC", {DHNO: "True", WEIGHT_BASE: "0.2", WEIGHT_NEW: "0.0"}),
)

# The swept key, its values, and the metric the paper plots against it (the other weight at its default)
WEIGHT_SWEEPS = (
    (WEIGHT_BASE, ("0.0", "0.1", "0.2", "0.3", "0.5", "1.0"), "base"),
    (WEIGHT_NEW, ("0.0", "0.01", "0.02", "0.05", "0.1", "0.2"), "new"),
)
