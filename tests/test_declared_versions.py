"""The versions setup.py declares are the ones CI tests: .ci/run's last pass installs the oldest declared Python and
torch, so the two files must name the same floors (a floor raised in one and not the other fails here)."""
import os
import re
import shlex

from support.paths import REPO_DIR


def read(name):
    with open(os.path.join(REPO_DIR, name), encoding="utf-8") as f:
        return f.read()


def ci_settings():
    """The ``NAME=value`` lines of .ci/run's oldest-versions pass."""
    return {name: shlex.split(value)[0] if value.strip() else "" for name, value in
            re.findall(r"^(OLDEST_[A-Z]+)=(.*)$", read(".ci/run"), flags=re.M)}


def declared_floor(requirement):
    """The ``X.Y`` after ``>=`` in setup.py for ``python_requires`` or a named requirement."""
    setup = read("setup.py")
    pattern = r'python_requires=">=([\d.]+)"' if requirement == "python" else rf'"{requirement}>=([\d.]+)'
    found = re.search(pattern, setup)
    assert found, f"setup.py declares no floor for {requirement}"
    return found.group(1)


def major_minor(version):
    return ".".join(version.split(".")[:2])


def test_ci_tests_the_python_and_torch_floors_setup_py_declares():
    ci = ci_settings()
    assert major_minor(ci["OLDEST_PYTHON"]) == declared_floor("python")
    assert major_minor(ci["OLDEST_TORCH"]) == declared_floor("torch")
    assert major_minor(ci["OLDEST_TORCHVISION"]) == declared_floor("torchvision")


def test_the_oldest_versions_subset_names_existing_test_files():
    subset = re.search(r'^OLDEST_SUBSET="([^"]+)"', read(".ci/run"), flags=re.M).group(1).split()
    assert len(subset) >= 3
    missing = [path for path in subset if not os.path.isfile(os.path.join(REPO_DIR, path))]
    assert not missing, f".ci/run's OLDEST_SUBSET names files that do not exist: {missing}"
