"""``MODEL.REFERENCE_PARITY`` implies ``ROUND_PROMPTS_FP16`` for the hosts whose reference rounds every inserted
prompt through fp16 in every precision (``HostModel.reference_rounds_prompts_fp16``: IVLP, PromptSRC, MaPLe).

A run that writes the key itself keeps its value: written means present in a yaml file (its ``_BASE_`` chain
included) or on the command line, whatever the value, so ``ROUND_PROMPTS_FP16 False`` wins over the switch
(``build_cfg`` says which keys the run wrote: ``trainers.engine.config.written_keys``).

This is a resolution registered with ``build_cfg`` (``config_resolution``), applied before the trainer's own
resolution, so that the printed, recorded and hashed config holds the value the run uses, and DPC's stage 2
compares that value with its stage-1 run's (``dpc/stage1.py``).
"""
from trainers.engine.config import config_resolution
from trainers.host_api.host_trainer import host_model_class, registered_hosts
from trainers.run.config_keys import ConfigError

ROUND_KEY = "ROUND_PROMPTS_FP16"
PARITY_KEY = "MODEL.REFERENCE_PARITY"


def rounding_nodes():
    """The config nodes of the registered hosts whose reference rounds inserted prompts through fp16."""
    classes = [host_model_class(name) for name in registered_hosts()]
    return sorted({cls.config_node for cls in classes if cls.reference_rounds_prompts_fp16})


@config_resolution
def round_prompts_under_parity(cfg, given):
    """The resolution ``build_cfg`` applies: the rounding implied (its keys added to ``given``: DPC's stage 2 then
    keeps an implied rounding over its stage-1 record's), and the notes for the run's log."""
    origins = imply_prompt_rounding(cfg, given)
    given.update(f"TRAINER.{node}.{ROUND_KEY}" for node, origin in origins.items() if origin == "implied")
    return lambda final, trainer_nodes: rounding_notes(final, origins, trainer_nodes)


def imply_prompt_rounding(cfg, written):
    """Under the switch, set ``ROUND_PROMPTS_FP16`` True in ``cfg`` (not frozen) wherever the run does not write it
    (``written``: the dotted keys it writes). Returns {node: "implied" or "written"} for the nodes concerned (empty
    without the switch)."""
    nodes = [node for node in rounding_nodes() if node in cfg.TRAINER]
    for node in nodes:
        value = cfg.TRAINER[node][ROUND_KEY]
        if not isinstance(value, bool):
            raise ConfigError(f"TRAINER.{node}.{ROUND_KEY} must be True or False, got {value!r}")
    if not cfg.MODEL.REFERENCE_PARITY:
        return {}
    origins = {node: "written" if f"TRAINER.{node}.{ROUND_KEY}" in written else "implied" for node in nodes}
    for node, origin in origins.items():
        if origin == "implied":
            cfg.TRAINER[node][ROUND_KEY] = True
    return origins


def rounding_notes(cfg, origins, trainer_nodes):
    """One line per node of ``trainer_nodes`` (the nodes the run's trainer reads) that ``origins`` covers, saying
    what the run does with its inserted prompts under the switch, from the final config (DPC may have inherited)."""
    notes = []
    for node in trainer_nodes:
        if node not in origins or not cfg.MODEL.REFERENCE_PARITY:
            continue
        key = f"TRAINER.{node}.{ROUND_KEY}"
        if cfg.TRAINER[node][ROUND_KEY]:
            why = "implied by" if origins[node] == "implied" else "as written, with"
            notes.append(f"{key} True ({why} {PARITY_KEY}): inserted prompts are rounded through fp16, as the "
                         "reference rounds them")
        else:
            notes.append(f"{key} False wins over {PARITY_KEY}: inserted prompts are not rounded through fp16, so "
                         "logits and gradients differ from the reference's in rounding")
    return notes
