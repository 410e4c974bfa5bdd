"""The docs name only what the repository ships: every ``python -m ...``, ``python train.py`` and ``bash scripts/...``
command of README.md, docs/*.md and scripts/README.md answers ``--help`` with exit status 0, every repository path
they cite exists, and every link between them lands on a file and a heading. The commands a new user runs first
(the README's quick start and "Wrapping a host", docs/DATASETS.md's example without a download) run as written,
with one training epoch, on a small demo world (bottom of this file).

The ``python -m`` commands run in this process (``runpy``, as ``python -m`` runs them), once per module: a fresh
interpreter per command would spend most of its time importing torch again.
"""
import glob
import importlib.util
import json
import os
import pathlib
import re
import runpy
import subprocess
import sys

import pytest
from support.paths import REPO_DIR

DOCS = ["README.md", *sorted(os.path.relpath(p, REPO_DIR) for p in glob.glob(os.path.join(REPO_DIR, "docs", "*.md"))),
        "scripts/README.md"]
REPO_PACKAGES = ("tools", "trainers", "datasets")  # top-level packages of this repository
# Files a reader is shown how to write (a dataset yaml, the worked example of a new host), so not shipped.
READER_WRITES = {"configs/datasets/my_flowers.yaml", "trainers/hosts/biased_coop.py",
                 "configs/trainers/BiasedCoOp/vit_b16_ctxv1.yaml"}

PYTHON_MODULE = re.compile(r"\bpython -m ([A-Za-z_][\w.]*\w)(?![.\w<])")  # not a pattern such as tools.<name>
PYTHON_FILE = re.compile(r"\bpython ([\w/.-]+\.py)\b")
BASH_SCRIPT = re.compile(r"\bbash (scripts/[\w/.-]+\.sh)\b")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"^(?:train\.py|setup\.py|LICENSE|ruff\.toml|pytest\.ini|\.ci/[\w.-]+|"
                       r"(?:trainers|tools|datasets|configs|scripts|tests|docs)(?:/[\w.+-]+)*/?)$")
FENCED_PATH = re.compile(r"(?<![\w/.$-])((?:trainers|tools|datasets|configs|scripts|tests|docs)/[\w/.+-]+"
                         r"\.(?:py|sh|yaml|json|md|pt|png))\b")


def read(doc):
    with open(os.path.join(REPO_DIR, doc), encoding="utf-8") as f:
        return f.read()


def prose_and_code(text):
    """(the text outside fenced code blocks, the text inside them)."""
    parts = re.split(r"^```.*$", text, flags=re.M)
    return "\n".join(parts[0::2]), "\n".join(parts[1::2])


def found(pattern, docs=DOCS):
    """Each match of ``pattern``'s first group -> the docs naming it."""
    names = {}
    for doc in docs:
        for name in pattern.findall(read(doc)):
            names.setdefault(name, []).append(doc)
    return names


MODULES = found(PYTHON_MODULE)
PYTHON_FILES = found(PYTHON_FILE)
SCRIPTS = found(BASH_SCRIPT)


def test_the_docs_name_commands_of_every_kind():
    """The extraction itself: the README's quick start and the docs' tools are found (a broken pattern would
    make every test below vacuous)."""
    assert {"tools.demo", "tools.pipeline", "tools.tables", "pytest"} <= set(MODULES)
    assert {"tools.bench.dpc_step", "tools.bench.executors", "tools.bench.parity_gap",
            "tools.bench.promptkd_memory"} <= set(MODULES)
    assert "train.py" in PYTHON_FILES and "README.md" in PYTHON_FILES["train.py"]
    assert "scripts/reproduce_base2new.sh" in SCRIPTS


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, on a module already imported
@pytest.mark.parametrize("module", sorted(MODULES))
def test_python_m_answers_help(module, monkeypatch, capsys):
    if module.split(".")[0] not in REPO_PACKAGES:  # the standard library's or an installed tool's (pytest, venv)
        assert importlib.util.find_spec(module) is not None, f"{MODULES[module]} name python -m {module}: not installed"
        return
    assert importlib.util.find_spec(module) is not None, f"{MODULES[module]} name python -m {module}: no such module"
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert done.value.code in (0, None), f"python -m {module} --help exited {done.value.code}"
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("path", sorted(PYTHON_FILES))
def test_python_files_exist_and_train_py_answers_help(path):
    assert os.path.isfile(os.path.join(REPO_DIR, path)), f"{PYTHON_FILES[path]} name python {path}: no such file"
    if path == "train.py":
        done = subprocess.run([sys.executable, "train.py", "--help"], cwd=REPO_DIR, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bash_scripts_answer_help(script, tmp_path):
    assert os.path.isfile(os.path.join(REPO_DIR, script)), f"{SCRIPTS[script]} name bash {script}: no such script"
    env = {key: value for key, value in os.environ.items() if key not in ("DATA", "OUTPUT", "HOST")}
    env["PYTHON"] = str(tmp_path / "no-python")  # --help must not start the pipeline
    done = subprocess.run(["bash", script, "--help"], cwd=REPO_DIR, capture_output=True, text=True, env=env,
                          timeout=30)
    assert done.returncode == 0 and done.stdout.strip(), f"bash {script} --help: exit {done.returncode}"


def cited_paths(doc):
    """Repository paths ``doc`` cites: code spans outside code blocks, and file paths inside them; paths with a
    placeholder (``<name>``, ``*``, ``...``) are patterns, not files."""
    prose, code = prose_and_code(read(doc))
    spans = [span.strip() for span in CODE_SPAN.findall(prose)]
    paths = [span for span in spans if REPO_PATH.match(span) and not re.search(r"[<>*{}$]|\.\.\.", span)]
    return set(paths) | set(FENCED_PATH.findall(code))


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_path_exists(doc):
    missing = sorted(p for p in cited_paths(doc) - READER_WRITES if not os.path.exists(os.path.join(REPO_DIR, p)))
    assert not missing, f"{doc} cites files the repository does not ship: {', '.join(missing)}"


def anchors(doc):
    """GitHub-style anchors of ``doc``'s headings."""
    prose, _ = prose_and_code(read(doc))
    headings = [line.lstrip("#").strip() for line in prose.splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_within_the_repository_lands(doc):
    for target in LINK.findall(read(doc)):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        assert os.path.exists(os.path.join(REPO_DIR, linked)), f"{doc} links to {target}: no such file"
        if anchor:
            assert anchor in anchors(linked), f"{doc} links to {target}: {linked} has no such heading"


# ---- the commands a new user runs first, run as written (CPU, offline) -------------------------------------
# The README's quick start (but the demo itself, minutes long: tests/test_demo_*.py), its "Wrapping a host"
# example and docs/DATASETS.md's example without a download, on a small demo world; what differs from a user's
# run: training is cut to one epoch (OPTIM.MAX_EPOCH 1, --opts for the pipeline), the pipeline's runs execute in
# this process (the pipeline's own executors are tested in tests/test_executor_*.py), paths go to tmp_path, and
# `python -m datasets.demo_world` (the full world) is replaced by a small one written with the same code.
RUNS_AS_WRITTEN = {  # (doc, the text its commands follow) -> those that run here, in order (until the next "## ")
    ("README.md", "## Set-up and quick start"): ["python train.py", "python -m tools.pipeline",
                                                 "python -m tools.tables"],
    ("README.md", "## Wrapping a host with DPC"): ["python train.py"] * 3,
    ("docs/DATASETS.md", "To try it without downloading anything"): ["python -m datasets.shapes", "python train.py"],
}
RUNNABLE = re.compile(r"^(python train\.py|python -m (?:tools\.pipeline|tools\.tables|datasets\.shapes))\b")


def documented_commands(doc, after):
    """The RUNNABLE commands in the code blocks of ``doc`` between ``after`` and the next "## " heading, continuation
    lines joined, comments dropped, in order; each with the value ``DATA`` was given before it (None: not yet)."""
    text = read(doc)
    start = text.index(after)
    end = text.find("\n## ", start + 1)
    _, code = prose_and_code(text[start:end if end >= 0 else None])
    commands, data = [], None
    for line in code.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("DATA="):
            data = line.split("=", 1)[1]
        if RUNNABLE.match(line):
            commands.append((RUNNABLE.match(line).group(1), line, data))
    return commands


def as_run_here(line, root, out):
    """``line`` with the data root and the output folder moved into the test's folders, and epochs cut to one."""
    line = re.sub(r"(--root )(\$DATA|data)\b", rf"\g<1>{root}", line)
    line = re.sub(r"(?<![\w/])output/", f"{out}/", line)
    argv = line.split()
    if argv[1] == "train.py" and "--eval-only" not in argv:
        argv += ["OPTIM.MAX_EPOCH", "1"]
    if argv[2:3] == ["tools.pipeline"]:
        argv += ["--opts", "OPTIM.MAX_EPOCH", "1", "--no-progress"]
    return argv


@pytest.fixture(scope="module")
def small_demo_world(tmp_path_factory):
    from datasets.demo_world import make_demo_world

    root = tmp_path_factory.mktemp("docs_world")
    make_demo_world(str(root), counts={"train": 2, "val": 1, "test": 1}, seed=5)
    return str(root)


def run_documented(argv, monkeypatch):
    """Run one documented command in this process; its exit status."""
    import train
    from tools.pipeline import cli as pipeline
    from tools.pipeline.executors.inline import InProcessExecutor

    if argv[1] == "train.py":
        return train.command_line(argv[2:])
    if argv[2] == "tools.pipeline":
        monkeypatch.setattr(pipeline, "executor_from_args", lambda args: InProcessExecutor())
        return pipeline.main(argv[3:])
    monkeypatch.setattr(sys, "argv", argv[2:])
    try:
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code or 0
    return 0


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("doc, after", sorted(RUNS_AS_WRITTEN))
def test_the_first_commands_run_as_written(doc, after, small_demo_world, tmp_path, monkeypatch, capsys):
    commands = documented_commands(doc, after)
    assert [program for program, _, _ in commands] == RUNS_AS_WRITTEN[doc, after]
    for _, line, data in commands:
        assert "$DATA" not in line or data == "data", f"{doc}: {line} uses $DATA before the docs set it to data"
    root = str(tmp_path / "data") if "datasets.shapes" in commands[0][0] else small_demo_world
    for _, line, _ in commands:
        argv = as_run_here(line, root, tmp_path / "output")
        status = run_documented(argv, monkeypatch)
        output = capsys.readouterr()
        assert status == 0, f"{doc}: {line}\n{output.out[-3000:]}\n{output.err[-3000:]}"
        if "--model-dir" in argv and "--load-epoch" not in argv:  # the run's result: its last epoch here
            record = json.loads((pathlib.Path(argv[argv.index("--output-dir") + 1]) / "results.json").read_text())
            assert record["evaluated"]["epoch"] == 1, record["evaluated"]
