"""Helpers of the fault tests that run ``train.py`` as a real process: start it, stop it at a chosen point, compare
what it leaves with an uninterrupted run."""
import json
import os
import subprocess
import sys

import torch

from support.paths import REPO_DIR
from support.runs import train_argv

# train.py whose process sends itself SIGNAL before the training step (epoch, batch), 0-based as the trainer
# counts: a stop at a chosen point, from inside, with nothing else changed. argv: SIGNAL EPOCH BATCH ARGS...
SIGNAL_AT_STEP = """
import os, signal, sys, time
import train
from trainers.engine import TRAINER_REGISTRY
signum, epoch, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
trainer_cls = TRAINER_REGISTRY.get(sys.argv[sys.argv.index("--trainer") + 1])
original = trainer_cls.forward_backward
def forward_backward(self, data):
    if (self.epoch, self.batch_idx) == (epoch, batch):
        print(f"signal sent at {time.time()}", flush=True)
        os.kill(os.getpid(), signum)
    return original(self, data)
trainer_cls.forward_backward = forward_backward
sys.argv = ["train.py", *sys.argv[4:]]
sys.exit(train.command_line(sys.argv[1:]))
"""


def signal_sent_at(log):
    """When SIGNAL_AT_STEP sent its signal, from the run's output."""
    for line in log.read_text().splitlines():
        if line.startswith("signal sent at "):
            return float(line.split()[-1])
    raise AssertionError("the signal was never sent:\n" + log.read_text()[-2000:])


def environment():
    env = {k: v for k, v in os.environ.items() if k != "DPC_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def start(args, log_path, **popen):
    """``python ARGS`` from the repository root in a session of its own (its data workers share it)."""
    log = open(log_path, "w")
    try:
        return subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO_DIR, env=environment(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, **popen)
    finally:
        log.close()


def run(args, timeout=300):
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO_DIR, env=environment(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def coop_train_args(root, clip, out, *opts, epochs=4):
    """A CoOp run whose final prompt depends on every epoch (random context, a large learning rate)."""
    return ["train.py", *train_argv("CoOp", root, clip, out, "OPTIM.LR", 0.05, "TRAINER.COOP.CTX_INIT", "", *opts,
                                    epochs=epochs, print_freq=1)]


def session_members(sid):
    """The pids of the live (not zombie) processes of session ``sid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            members.append(int(name))
    return members


def final_state(out, model_name="prompt_learner"):
    """The state dict of the run's latest checkpoint, and its epoch."""
    folder = os.path.join(out, model_name)
    with open(os.path.join(folder, "checkpoint")) as f:
        name = f.readline().strip()
    checkpoint = torch.load(os.path.join(folder, name), weights_only=True)
    return checkpoint["state_dict"], checkpoint["epoch"]


def accuracy(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)["accuracy"]


def assert_same_final_prompt(reference, out, model_name="prompt_learner"):
    expected, epoch = final_state(reference, model_name)
    got, got_epoch = final_state(out, model_name)
    assert got_epoch == epoch and list(got) == list(expected)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert accuracy(out) == accuracy(reference)


def leftover_partial_files(out):
    """Temporary files of atomic writes (``.<name>.<random>.tmp``) anywhere under ``out``."""
    return [os.path.join(folder, name) for folder, _, names in os.walk(out) for name in names
            if name.endswith(".tmp")]
