"""The toolbox seam: names come from Dassl when it is importable, from the built-in runtime otherwise."""
import ast
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORCED_BUILTIN = os.environ.get("DPC_RUNTIME", "").lower() == "builtin"


def test_with_dassl_installed_the_seam_exports_dassls_classes():
    if FORCED_BUILTIN:
        pytest.skip("DPC_RUNTIME=builtin forces the built-in runtime")
    pytest.importorskip("dassl")
    import dassl.data.datasets
    import dassl.engine

    import datasets.toolbox
    import trainers.engine

    assert datasets.toolbox.HAVE_DASSL and trainers.engine.RUNTIME_NAME == "Dassl"
    assert trainers.engine.TrainerX is dassl.engine.TrainerX
    assert trainers.engine.TRAINER_REGISTRY is dassl.engine.TRAINER_REGISTRY
    assert datasets.toolbox.Datum is dassl.data.datasets.Datum
    assert datasets.toolbox.DATASET_REGISTRY is dassl.data.datasets.DATASET_REGISTRY
    assert "CoOp" in dassl.engine.TRAINER_REGISTRY.registered_names()  # our trainers register into Dassl's


def run_python(code, env_update, extra_path=()):
    env = {k: v for k, v in os.environ.items() if k != "DPC_RUNTIME"}
    env.update(env_update)
    env["PYTHONPATH"] = os.pathsep.join([*extra_path, REPO])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_without_dassl_the_builtin_runtime_is_used():
    """DPC_RUNTIME unset and ``dassl`` not importable (blocked even if it is installed)."""
    result = run_python("""
        import sys
        sys.modules["dassl"] = None  # makes `import dassl` fail and find_spec("dassl") return None
        import datasets.toolbox, datasets.runtime, trainers.engine, trainers.engine.runtime
        assert datasets.toolbox.HAVE_DASSL is False, "HAVE_DASSL"
        assert trainers.engine.HAVE_DASSL is False and trainers.engine.RUNTIME_NAME == "built-in"
        assert trainers.engine.TrainerX is trainers.engine.runtime.TrainerX
        assert trainers.engine.build_trainer is trainers.engine.runtime.build_trainer
        assert datasets.toolbox.Datum is datasets.runtime.Datum
        assert datasets.toolbox.DATASET_REGISTRY is datasets.runtime.DATASET_REGISTRY
        print("builtin ok")
    """, {})
    assert result.returncode == 0, result.stderr
    assert "builtin ok" in result.stdout


@pytest.fixture
def fake_dassl(tmp_path, monkeypatch):
    """An importable ``dassl`` package that refuses to be used: it shows which runtime the seam picks."""
    package = tmp_path / "fake" / "dassl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise ImportError("the fake dassl package was imported")\n')
    for name in [m for m in sys.modules if m == "dassl" or m.startswith("dassl.")]:
        monkeypatch.delitem(sys.modules, name)  # (restored after the test: the real Dassl stays usable)
    monkeypatch.syspath_prepend(str(tmp_path / "fake"))
    monkeypatch.delenv("DPC_RUNTIME", raising=False)


def load_fresh_toolbox():
    """Execute datasets/toolbox.py again as a throw-away module (the imported seam is left alone)."""
    path = os.path.join(REPO, "datasets", "toolbox.py")
    spec = importlib.util.spec_from_file_location("datasets._toolbox_probe", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "datasets"
    spec.loader.exec_module(module)
    return module


def test_the_seam_prefers_an_importable_dassl(fake_dassl):
    with pytest.raises(ImportError, match="the fake dassl package was imported"):
        load_fresh_toolbox()


def test_dpc_runtime_builtin_overrides_an_installed_dassl(fake_dassl, monkeypatch):
    import datasets.runtime

    monkeypatch.setenv("DPC_RUNTIME", "builtin")
    toolbox = load_fresh_toolbox()
    assert toolbox.HAVE_DASSL is False and toolbox.RUNTIME_NAME == "built-in"
    assert toolbox.Datum is datasets.runtime.Datum and toolbox.DataManager is datasets.runtime.DataManager


# ---- who may import whom (docs/DEVELOPERS.md) --------------------------------------------------------------

SEAM_FILES = ("datasets/toolbox.py", "trainers/engine/__init__.py",
              "tools/bench/mmrl_reference_parity.py")  # runs the reference's own code, which is Dassl code
SEAM_DIRS = ("datasets/runtime/", "trainers/engine/runtime/")


def project_modules():
    for top in ("datasets", "trainers", "tools"):
        for folder, _, names in os.walk(os.path.join(REPO, top)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, REPO).replace(os.sep, "/"), path
    yield "train.py", os.path.join(REPO, "train.py")


def imported_modules(rel_path, path):
    """Absolute names of the modules a file imports (relative imports resolved)."""
    package = rel_path[:-3].replace("/", ".")
    if not rel_path.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    else:
        package = package[: -len(".__init__")]
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"


def test_only_the_seam_imports_dassl_or_the_builtin_runtime():
    offenders = []
    for rel_path, path in project_modules():
        in_seam = rel_path in SEAM_FILES or rel_path.startswith(SEAM_DIRS)
        for module in imported_modules(rel_path, path):
            root = module.split(".")[0]
            runtime = module.startswith(("datasets.runtime", "trainers.engine.runtime"))
            if (root == "dassl" or runtime) and not in_seam:
                offenders.append(f"{rel_path}: {module}")
            if rel_path.startswith("datasets/") and root == "trainers":
                offenders.append(f"{rel_path}: {module} (datasets/ must not import trainers/)")
    assert not offenders, "imports that bypass the toolbox seam:\n" + "\n".join(sorted(set(offenders)))


def test_dpc_knows_hosts_only_through_the_interface():
    """trainers/dpc imports the host interface (trainers.host_api.interface, host_trainer, settings), never a host."""
    interface = tuple(f"trainers.host_api.{name}" for name in ("interface", "host_trainer", "settings"))
    offenders = [f"{rel_path}: {module}" for rel_path, path in project_modules() if rel_path.startswith("trainers/dpc/")
                 for module in imported_modules(rel_path, path)
                 if module.startswith("trainers.hosts") and not module.startswith(interface)]
    assert not offenders, "DPC names a host:\n" + "\n".join(sorted(set(offenders)))
