"""Stage 2 inherits the host: DPC rebuilds the host as the checkpoint it starts from records it.

That checkpoint is the stage-1 run's (``TRAINER.DPC.BACKBONE_DIR``) when training, and the DPC run's own when
evaluating one. For every recorded setting (``trainers/host_api/settings.py``) the config of this run
- takes the recorded value for a key the run does not give;
- may repeat the recorded value;
- may override it when the key only changes how the host computes or trains (``PREC``, the host's
  ``overridable_settings``, the input normalisation, ``MODEL.REFERENCE_PARITY``): honoured, and logged;
- may not set another value otherwise: the prompts would not load, or would mean something else. That is one
  ``ConfigError`` line naming the key and both values.
A key counts as given when the run writes it (a yaml file of its ``_BASE_`` chain, a flag or an option, whatever
the value, even the default's) or a resolution of ``build_cfg`` sets it (``ROUND_PROMPTS_FP16`` implied by
``MODEL.REFERENCE_PARITY``): ``build_cfg`` computes that once and hands it to ``DPC.resolve_config``. An evaluation
rebuilds the host from its DPC checkpoint after its config is built, without that answer: there a key at its
default counts as not given.

A DPC training reads its stage-1 checkpoint once: the config's resolution (which needs the host record, in
``build_cfg``) and ``DPC.load_stage1`` (the prompts) share that read (``read_stage1_checkpoint``).
"""
import os

from trainers.engine.clip_trainer import ClipTrainer
from trainers.engine.prompt_shape import plain
from trainers.host_api.host_trainer import host_model_class
from trainers.host_api.settings import is_overridable
from trainers.run.checkpoints import BEST_FILE, latest_checkpoint, load_checkpoint
from trainers.run.config_keys import ConfigError, get_key, has_key

STAGE1_HINT = "TRAINER.DPC.BACKBONE_DIR must be the host's stage-1 output directory; check BACKBONE_EPOCH"


def _model_folders(run_dir):
    """The folders of ``run_dir`` that hold checkpoints (one per registered model)."""
    names = sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
    return [name for name in names if latest_checkpoint(os.path.join(run_dir, name))
            or os.path.isfile(os.path.join(run_dir, name, BEST_FILE))]


def has_checkpoint(backbone_dir):
    """Whether the stage-1 run exists yet: a checkpoint file, or a run directory holding one."""
    return os.path.isfile(backbone_dir) or bool(_model_folders(backbone_dir))


def stage1_checkpoint(backbone_dir, epoch, host):
    """The stage-1 checkpoint file: ``backbone_dir`` itself when it is a file, else the checkpoint of the run
    directory's model folder (the host's, when the run holds several)."""
    if os.path.isfile(backbone_dir):
        return backbone_dir
    folders = _model_folders(backbone_dir)
    if host and host_model_class(host).checkpoint_name in folders:
        folders = [host_model_class(host).checkpoint_name]
    if not folders:
        why = "no model folder in it holds one" if os.path.isdir(backbone_dir) else "it does not exist"
        raise FileNotFoundError(f"No checkpoint in TRAINER.DPC.BACKBONE_DIR {backbone_dir} ({why}): it must be the "
                                "host's stage-1 output directory, or a checkpoint file in it")
    if len(folders) > 1:
        raise ConfigError(f"TRAINER.DPC.BACKBONE_DIR {backbone_dir} holds checkpoints of several models "
                          f"({', '.join(folders)}): set TRAINER.DPC.HOST")
    return ClipTrainer.checkpoint_path(backbone_dir, folders[0], epoch if epoch >= 0 else None, prefer_latest=True,
                                       hint=STAGE1_HINT)


class EveryKey:
    """``given`` for a config built already: every value in it stands."""

    def __contains__(self, key):
        return True


def given_keys(cfg, defaults):
    """``given`` where ``build_cfg``'s answer is not known: the keys whose value differs from the default."""
    class Differing:
        def __contains__(self, key):
            return plain(get_key(cfg, key)) != plain(get_key(defaults, key))
    return Differing()


def inherit_host(cfg, given, record, source):
    """Set ``cfg`` (not frozen) to the host ``record`` describes, by the rules above (``given``: the keys the run
    gives); returns the lines to log."""
    dpc = cfg.TRAINER.DPC
    if dpc.HOST and dpc.HOST != record["trainer"]:
        raise ConfigError(f"TRAINER.DPC.HOST is {dpc.HOST!r}, but {source} holds prompts of {record['trainer']!r}")
    dpc.HOST = record["trainer"]
    model_class = host_model_class(record["trainer"])
    notes = [f"Host {record['trainer']} rebuilt as {source} records it"]
    for key, recorded in record["settings"].items():
        if not has_key(cfg, key):
            continue  # a key this version no longer has
        current = plain(get_key(cfg, key))
        if current == recorded:
            continue
        if key not in given:
            cfg.merge_from_list([key, recorded])
        elif is_overridable(key, model_class):
            notes.append(f"Override of the host's {key}: {recorded!r} in {source}, {current!r} here")
        else:
            raise ConfigError(f"{key} is {current!r} here, but {source} was trained with {recorded!r}: DPC rebuilds "
                              "the host as it was trained; drop the option (or train stage 1 with it)")
    return notes


def inherit_stage1_host(cfg, given):
    """``inherit_host`` from the stage-1 checkpoint of ``TRAINER.DPC.BACKBONE_DIR``, when there is one yet (the
    model's build says so when there is none; an evaluation reads the DPC checkpoint instead)."""
    dpc = cfg.TRAINER.DPC
    if not dpc.BACKBONE_DIR or not has_checkpoint(dpc.BACKBONE_DIR):
        return []
    path = stage1_checkpoint(dpc.BACKBONE_DIR, dpc.BACKBONE_EPOCH, dpc.HOST)
    record = recorded_host(path)
    if record is not None:
        return inherit_host(cfg, given, record, path)
    if not dpc.HOST:
        raise ConfigError(f"{path} does not record its host (a checkpoint of the reference code?): set "
                          "TRAINER.DPC.HOST")
    if not cfg.MODEL.BACKBONE.NAME:
        raise ConfigError(f"{path} does not record its host's settings (a checkpoint of the reference code?): the "
                          "host is built from this run's config, which needs MODEL.BACKBONE.NAME (and the host's "
                          "prompt settings as that run had them)")
    return [f"{path} does not record its host's settings: the host is built from this run's config"]


def recorded_host(path):
    """The ``"host"`` record of a stage-1 checkpoint file, or None (the reference's checkpoints, and older ones,
    have none)."""
    return read_stage1_checkpoint(path).get("host")


_last_read = (None, None)  # ((path, mtime, size), checkpoint) of the last stage-1 file read in this process


def read_stage1_checkpoint(path):
    """The stage-1 checkpoint at ``path``, read from disk only when it is not the file read last (same path,
    modification time and size): one DPC run asks for it while its config is built and again for its prompts.
    Only the last file is kept, so a process that plans many runs holds one."""
    global _last_read
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if _last_read[0] != key:
        _last_read = (key, load_checkpoint(path))
    return _last_read[1]
