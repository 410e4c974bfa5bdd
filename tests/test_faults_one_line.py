"""Every failure in one line, from every process: a full disk under each writer, an error raised in a data-loader
worker, CLIP weights that cannot be downloaded or are not CLIP's. Each is ``train.py: error: ...`` naming the file
and what to do, then the ``--debug`` hint: exit status 2, no traceback, no ``results.json``, no temporary file."""
import errno
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest
import torch
from support.paths import REPO_DIR
from support.runs import train_argv

import train
from datasets import atomic_write
from tools.pipeline.executors.base import Exit
from trainers.run import console_log
from trainers.run.checkpoints import latest_checkpoint, load_checkpoint

NO_SPACE = "no space left on its file system; free some space there (or choose another folder) and run the same " \
           "command again (an earlier version of the file, if any, is intact)"


def one_line_error(status, stderr):
    """The error line of a bad input reported as train.py reports it (a full disk may also have stopped the log,
    said in a line of its own)."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("Could not write the log ")]
    assert status == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("train.py: (rerun with --debug")
    assert lines[-2].startswith("train.py: error: ")
    return lines[-2][len("train.py: error: "):]


def command_line(capsys, *argv):
    status = train.command_line([str(a) for a in argv])
    return status, capsys.readouterr().err


def leftovers(folder):
    return [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f.endswith(".tmp")]


# ---- a full disk, simulated: each writer in turn fails with ENOSPC ------------------------------------------------

WRITERS = {  # the file each case fills the disk at, and how the error names it
    "checkpoint": ("model.pth.tar-1", "the checkpoint"),
    "pointer": ("checkpoint", "the checkpoint pointer"),
    "results.json": ("results.json", "the run's record"),
    "few-shot cache": ("shot_4-seed_1.pkl", "the cache"),
    "feature cache": (".pt", "the feature cache entry"),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_under_each_writer_is_one_line(writer, tmp_path, shapes_root, tiny_clip_path, capsys,
                                                   monkeypatch):
    name, what = WRITERS[writer]
    real_replace = os.replace

    def replace_on_a_full_disk(src, dst):
        if str(dst).endswith(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic_write.os, "replace", replace_on_a_full_disk)
    out = tmp_path / "run"
    status, err = command_line(capsys, *train_argv("CoOp", shapes_root, tiny_clip_path, out, "TEST.FEATURE_CACHE",
                                                  tmp_path / "features", epochs=1))
    message = one_line_error(status, err)
    assert message.startswith(f"Could not write {what} ") and message.endswith(NO_SPACE)
    assert message.split()[len(what.split()) + 3].rstrip(":").endswith(name)  # the file, by its path
    assert not (out / "results.json").exists()
    assert not leftovers(out) and not leftovers(shapes_root) and not leftovers(tmp_path / "features")


def test_a_full_disk_under_the_log_stops_the_logging_in_one_line(tmp_path, shapes_root, tiny_clip_path, capsys,
                                                                 monkeypatch):
    class FullDiskFile:
        def __init__(self, *args, **kwargs):
            self.written = 0

        def write(self, text):
            self.written += len(text)
            if self.written > 2000:  # the disk fills up after a few lines
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

        def close(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a buffered file's last flush does

    monkeypatch.setattr(console_log, "open", FullDiskFile, raising=False)
    out = tmp_path / "run"
    status = train.command_line([str(a) for a in train_argv("CoOp", shapes_root, tiny_clip_path, out, epochs=1)])
    printed = capsys.readouterr()
    assert status == 0 and "Traceback" not in printed.err
    note = f"Could not write the log {out}/log.txt (no space left on its file system); the rest of this output " \
           "is not logged there"
    assert (printed.out + printed.err).count(note) == 1  # once, though stdout and stderr both went there
    assert (out / "results.json").exists()  # the log is not the record: the run itself goes on


# ---- a full disk, for real: a small tmpfs as the output folder (root only) ----------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a tmpfs of a given size at a fresh folder; unmounted after the test."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(size):
        folder = tmp_path / f"disk_{size}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("size", ["4k", "40k", "56k"])
def test_a_really_full_disk_is_one_line_at_any_size(size, small_disk, shapes_root, tiny_clip_path):
    """Fills up (on this machine) at the log then the first checkpoint, at the second checkpoint, at a pointer:
    always one line naming the file, and what is left is whole: the pointer names a checkpoint that loads."""
    out = small_disk(size) / "run"
    result = subprocess.run([sys.executable, "train.py", *map(str, train_argv("CoOp", shapes_root, tiny_clip_path, out,
                                                                              epochs=3))],
                            cwd=REPO_DIR, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    message = one_line_error(result.returncode, result.stderr)
    assert message.startswith("Could not write ") and f" {out}/" in message and message.endswith(NO_SPACE)
    assert not (out / "results.json").exists() and not leftovers(out)
    model_dir = out / "prompt_learner"
    for name in os.listdir(model_dir):
        if name.startswith("model.pth.tar-"):
            assert load_checkpoint(str(model_dir / name))["state_dict"]["ctx"].shape == (4, 64)
    if (model_dir / "checkpoint").exists():
        assert latest_checkpoint(str(model_dir)) == str(model_dir / (model_dir / "checkpoint").read_text().strip())


# ---- an error raised in a data-loader worker ------------------------------------------------------------------


def test_an_error_in_a_data_loader_worker_is_one_line(tmp_path, shapes_root, tiny_clip_path, capsys):
    folder = tmp_path / "data" / "shapes" / "blue_circle"  # a base class: its training images are read
    for image in folder.glob("*.png"):
        image.write_bytes(b"not an image")
    out = tmp_path / "run"
    argv = train_argv("CoOp", shapes_root, tiny_clip_path, out, "DATALOADER.NUM_WORKERS", 1, shots=-1, epochs=1)
    status, err = command_line(capsys, *argv)
    message = one_line_error(status, err)
    assert re.match(rf"Cannot read the image {folder}/\d+\.png \(UnidentifiedImageError: ", message), message
    assert message.endswith("(in data-loader worker 0)") and "Original Traceback" not in message
    assert not (out / "results.json").exists()


# ---- CLIP weights -------------------------------------------------------------------------------------------------


def test_clip_weights_that_cannot_be_downloaded_are_one_line(tmp_path, shapes_root, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cache = tmp_path / "clip_cache"
    out = tmp_path / "run"
    argv = train_argv("CoOp", shapes_root, "ViT-B/16", out, "MODEL.BACKBONE.CACHE_DIR", cache)
    status, err = command_line(capsys, *argv)
    message = one_line_error(status, err)
    assert message.startswith("Could not download the CLIP weights for MODEL.BACKBONE.NAME='ViT-B/16' (<urlopen "
                              "error [Errno -3] Temporary failure in name resolution>). On a machine without "
                              f"internet, copy the file to {cache}/ViT-B-16.pt or set MODEL.BACKBONE.NAME")
    assert not (out / "results.json").exists()


@pytest.mark.parametrize("key, detail", [
    ("visual.conv1.weight", "the key 'visual.conv1.weight' is missing"),  # what the architecture is read from
    ("transformer.resblocks.1.ln_2.bias",  # read by load_state_dict only
     'Error(s) in loading state_dict for CLIP: Missing key(s) in state_dict: "transformer.resblocks.1.ln_2.bias"'),
])
def test_a_clip_state_dict_with_a_key_missing_is_one_line(key, detail, tmp_path, shapes_root, tiny_clip_path,
                                                          capsys):
    state = torch.load(tiny_clip_path, weights_only=True)
    del state[key]
    weights = tmp_path / "not_quite_clip.pt"
    torch.save(state, weights)
    status, err = command_line(capsys, *train_argv("CoOp", shapes_root, weights, tmp_path / "run"))
    message = one_line_error(status, err)
    assert message.startswith(f"CLIP weights {weights} are not a complete clip.model.CLIP state dict ({detail}")
    assert message.endswith("download or copy the file again, or set MODEL.BACKBONE.NAME to the CLIP weights you "
                            "meant")


# ---- the pipeline names the signal that stopped a run ----------------------------------------------------------


@pytest.mark.parametrize("status, said", [(143, "stopped by SIGTERM (exit status 143)"),
                                          (140, "stopped by SIGUSR2 (exit status 140)"),
                                          (-15, "killed by signal SIGTERM"), (2, "exit status 2")])
def test_the_pipeline_says_which_signal_stopped_a_run(status, said):
    assert Exit(status).describe() == said
