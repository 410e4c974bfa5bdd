"""DPC: the wrapper trainer, its hard-negative sampler, loss and prompt weighting."""
from . import config, trainer  # registration
