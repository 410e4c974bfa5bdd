"""Every runnable script answers ``--help`` with its usage header (the comment block at its top) and runs nothing."""
import glob
import os
import shutil
import subprocess

import pytest

SCRIPTS = sorted(p for p in glob.glob("scripts/**/*.sh", recursive=True) if p != "scripts/lib/common.sh")  # sourced


def usage_header(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = []
    for line in lines[1:] if lines[0].startswith("#!") else lines:
        if not line.startswith("#"):
            break
        header.append(line[2:] if line.startswith("# ") else line[1:])
    return header


def test_every_script_has_a_usage_header():
    assert len(SCRIPTS) >= 25
    for path in SCRIPTS:
        assert usage_header(path), f"{path} has no comment block at its top to print for --help"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("path", SCRIPTS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_header(path, flag, tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATA", "OUTPUT", "HOST")}
    env["PYTHON"] = str(tmp_path / "no-python")  # --help must not start the pipeline
    done = subprocess.run(["bash", path, flag], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, f"{path} {flag}: exit {done.returncode}: {done.stderr.strip()}"
    assert done.stdout.splitlines() == usage_header(path), f"{path} {flag} printed something else"
    assert done.stderr == ""
