"""Trainers: the training half of the toolbox seam (``engine``), CLIP prompting (``prompted_clip``), the host
interface (``host``, ``host_trainer``), the hosts (``hosts/``), DPC (``dpc/``) and zero-shot CLIP. Importing this
package registers every trainer and its config node."""
from . import dpc, hosts, zsclip  # registration
from .config import extend_cfg
from .engine import TRAINER_REGISTRY
