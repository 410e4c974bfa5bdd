"""DPC: the wrapper trainer, its hard-negative sampler, loss and prompt weighting."""
from trainers.dpc import config, trainer  # registration
