"""Trainers: the training half of the toolbox seam (``engine``), CLIP prompting (``prompted_clip``), the host
interface (``host``, ``host_trainer``), the hosts (``hosts/``), DPC (``dpc/``) and zero-shot CLIP. Importing this
package registers every trainer and its config node."""
from trainers import dpc, hosts, zsclip  # registration
from trainers.config import extend_cfg
from trainers.engine import TRAINER_REGISTRY
