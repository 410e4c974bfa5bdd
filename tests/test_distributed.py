"""Two gloo processes under torchrun on the CPU: sharded data, averaged gradients, rank 0 writes the run."""
import json
import os
import subprocess
import sys

import pytest
from support.paths import REPO_DIR
from support.runs import train_argv

from trainers.prompted_clip import init_context, load_clip
from trainers.run.checkpoints import load_checkpoint


def torchrun(*argv):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "train.py", *[str(a) for a in argv]]
    return subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_coop_trains_on_two_processes_with_the_same_prompts(tmp_path, shapes_root, tiny_clip_path):
    out = tmp_path / "coop"
    # 12 training images: 6 per process, 3 batches of 2 each per epoch.
    done = torchrun(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "DATALOADER.TRAIN_X.BATCH_SIZE", 2, epochs=2))
    assert done.returncode == 0, done.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert "Distributed training: 2 processes" in log
    assert "batch [3/3]" in log
    # after_train raises when the processes' prompts differ; rank 0 alone wrote the run.
    assert json.loads((out / "results.json").read_text())["n"] == 9
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-2"]
    # one console: rank 0 prints every line once, and only rank 0 evaluates
    assert done.stdout.count("Distributed training: 2 processes") == 1
    assert done.stdout.count("Evaluate on the *test* set") == 1 and done.stdout.count("* accuracy:") == 1


@pytest.mark.slow
def test_chunked_text_under_ddp_trains_the_prompts_of_the_unchunked_run(tmp_path, shapes_root, tiny_clip_path):
    """MODEL.TEXT_CHUNK 1 (one class per recomputed chunk) inside DDP's forward: each gradient is reduced once,
    so the two processes train the prompts of the unchunked run (to fp32 rounding)."""
    contexts = {}
    for chunk in (0, 1):
        out = tmp_path / f"chunk{chunk}"
        done = torchrun(*train_argv("CoOp", shapes_root, tiny_clip_path, out, "DATALOADER.TRAIN_X.BATCH_SIZE", 2,
                                    "MODEL.TEXT_CHUNK", chunk, epochs=1))
        assert done.returncode == 0, done.stderr[-3000:]
        contexts[chunk] = load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-1"))["state_dict"]["ctx"]
    initial = init_context(load_clip(str(tiny_clip_path)), "a photo of a")[0]
    moved = (contexts[0] - initial).abs().max()
    assert moved > 0 and (contexts[1] - contexts[0]).abs().max() <= 1e-4 * moved
