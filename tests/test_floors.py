"""One folder, one floor: every import of the product code goes to a lower floor or stays in its own folder.

``FLOORS`` is the layout table of docs/DEVELOPERS.md: a folder's floor, bottom (0) to top. A file belongs to the
nearest folder listed (``tools/pipeline/executors/`` is ``tools/pipeline``'s). Every import counts, those inside
functions and under ``TYPE_CHECKING`` too. An import may go
- into its own folder;
- into a folder of a lower floor, unless that folder lies inside another folder that is not below the importer
  (``trainers/dpc`` may not reach into ``trainers/hosts/parts``: ``trainers/hosts`` is its sibling).
Folders on the same floor are siblings: neither imports the other (``trainers/hosts`` and ``trainers/dpc``: DPC
knows hosts only through ``trainers/host_api``). No two product modules import each other, directly or round a
circle (within a folder too).
"""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT = ("datasets", "trainers", "tools", "train.py")

FLOORS = {
    "datasets/runtime": 0,  # the built-in runtime's data half (Dassl's look-alike)
    "datasets": 1,  # the toolbox seam's data half, splits, few-shot, the dataset readers
    "trainers/run": 2,  # run primitives: checkpoints, record, lock, log, errors, signals; torch-free config keys
    "trainers/engine/runtime": 2,  # the built-in runtime's training half
    "trainers/prompted_clip": 3,  # CLIP with prompts
    "trainers/evaluation": 3,  # test scoring, feature cache
    "trainers/engine": 4,  # the toolbox seam, ClipTrainer, optim, build_cfg, identity, value ranges, prompt shapes
    "trainers/host_api": 5,  # the host contract, how every host trains, the registry's hosts, host settings
    "trainers/launch": 5,  # what train.py does: main, finished runs, schedule overrides
    "trainers/hosts/parts": 6,  # parts several hosts share
    "trainers/hosts": 7,  # one module per host
    "trainers/dpc": 7,  # the DPC wrapper
    "trainers/inference": 8,  # a finished run put to use (load_run), above the hosts and DPC
    "trainers": 9,  # importing the package registers every trainer
    "tools": 10,  # output folders, the paper's experiments as data
    "tools/tables": 11,
    "tools/pipeline": 12,
    "tools/demo": 13,
    "tools/bench": 14,
    "": 15,  # train.py
}


def product_files(root, tops=PRODUCT):
    """Repository-relative paths of the product's .py files."""
    for top in tops:
        if top.endswith(".py"):
            if os.path.isfile(os.path.join(root, top)):
                yield top
            continue
        for folder, dirs, names in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def module_file(root, module):
    """The file of a dotted module name in ``root`` (a package's ``__init__.py``), or None."""
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if os.path.isfile(os.path.join(root, candidate)):
            return candidate
    return None


def imports(root, rel_path):
    """``(line, file)`` for every product module ``rel_path`` imports, at any depth of its syntax tree."""
    package = rel_path[:-3].replace("/", ".")
    package = package[: -len(".__init__")] if rel_path.endswith("__init__.py") else package.rpartition(".")[0]
    with open(os.path.join(root, rel_path)) as f:
        tree = ast.parse(f.read(), filename=rel_path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                module = ".".join(parts[: len(parts) - node.level + 1] + ([module] if module else []))
            # ``from package import module`` imports the module; ``from module import name`` the module
            names = [f"{module}.{alias.name}" if module_file(root, f"{module}.{alias.name}") else module
                     for alias in node.names]
        else:
            continue
        for target in dict.fromkeys(module_file(root, name) for name in names):  # once per statement
            if target is not None and target != rel_path:
                yield node.lineno, target


def folder_of(rel_path):
    return os.path.dirname(rel_path)


def listed_folder(folder, floors):
    """The nearest folder of ``floors`` that holds ``folder`` (itself included), or None."""
    while folder not in floors:
        if not folder:
            return None
        folder = os.path.dirname(folder)
    return folder


def enclosing(folder, floors):
    """The listed folders that hold ``folder``, itself first, the root last."""
    chain = []
    while True:
        if folder in floors:
            chain.append(folder)
        if not folder:
            return chain
        folder = os.path.dirname(folder)


def floor_violations(root, floors=FLOORS, tops=PRODUCT):
    """One line per import that does not go down (or stay in its folder), and per file without a floor."""
    problems = []
    for rel_path in product_files(root, tops):
        source = listed_folder(folder_of(rel_path), floors)
        if source is None:
            problems.append(f"{rel_path}: its folder has no floor; add it to FLOORS (tests/test_floors.py) and to "
                            "the layout table of docs/DEVELOPERS.md")
            continue
        around_source = set(enclosing(source, floors))
        for line, target_file in imports(root, rel_path):
            target = listed_folder(folder_of(target_file), floors)
            if target is None or target == source:
                continue
            # the target's folder, and every folder around it that does not also hold the importer, must be lower
            too_high = [f for f in enclosing(target, floors) if f not in around_source and floors[f] >= floors[source]]
            if too_high:
                wall = too_high[-1]
                what = "a sibling of" if floors[wall] == floors[source] else "above"
                problems.append(f"{rel_path}:{line} imports {target_file}: {wall or '.'}/ (floor {floors[wall]}) is "
                                f"{what} {source or '.'}/ (floor {floors[source]})")
    return problems


def import_circles(root, tops=PRODUCT):
    """The product modules that import each other round a circle, as lists of files (strongly connected
    components of the import graph, Tarjan's algorithm)."""
    graph = {rel: sorted({target for _, target in imports(root, rel)}) for rel in product_files(root, tops)}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


# ---- the product ---------------------------------------------------------------------------------------------

def test_every_import_goes_down_a_floor():
    problems = floor_violations(REPO)
    assert not problems, (f"{len(problems)} import(s) against the floors (docs/DEVELOPERS.md, Layout): move the "
                          "code to its floor, or the import into the caller above\n" + "\n".join(problems))


def test_no_import_circle_among_product_modules():
    circles = import_circles(REPO)
    assert not circles, "modules that import each other:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_floors_is_the_layout_table_of_the_developer_notes():
    """docs/DEVELOPERS.md's layout table lists every folder of FLOORS with its floor."""
    with open(os.path.join(REPO, "docs", "DEVELOPERS.md")) as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[1].isdigit() and cells[0].startswith("`"):
            rows[cells[0].strip("`").rstrip("/")] = int(cells[1])
    expected = {("train.py" if folder == "" else folder): floor for folder, floor in FLOORS.items()}
    assert rows == expected


# ---- the walker, on a small tree -----------------------------------------------------------------------------

def write(root, rel_path, text=""):
    path = root / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_walker_names_each_import_against_the_floors(tmp_path):
    floors = {"pkg/low": 0, "pkg/high/parts": 1, "pkg/high": 2, "pkg/side": 2, "pkg": 3}
    for folder in ("pkg", "pkg/low", "pkg/high", "pkg/side", "pkg/high/parts"):
        write(tmp_path, f"{folder}/__init__.py")
    write(tmp_path, "pkg/low/base.py", "X = 1\n\n\ndef late():\n    from pkg.high.top import Y  # up, in a function\n"
                                       "    return Y\n")
    write(tmp_path, "pkg/low/other.py", "from pkg.low.base import X  # its own folder\n")
    write(tmp_path, "pkg/high/top.py", "from pkg.low import base  # down\nfrom pkg.high.parts import part\nY = 2\n")
    write(tmp_path, "pkg/high/parts/part.py", "from pkg.low.base import X\n")
    write(tmp_path, "pkg/side/s.py", "import pkg.high.top\nfrom pkg.high.parts.part import X\n")
    write(tmp_path, "pkg/side/ok.py", "from pkg.low.base import X\n")
    problems = floor_violations(tmp_path, floors, tops=("pkg",))
    assert problems == [
        "pkg/low/base.py:5 imports pkg/high/top.py: pkg/high/ (floor 2) is above pkg/low/ (floor 0)",
        "pkg/side/s.py:1 imports pkg/high/top.py: pkg/high/ (floor 2) is a sibling of pkg/side/ (floor 2)",
        "pkg/side/s.py:2 imports pkg/high/parts/part.py: pkg/high/ (floor 2) is a sibling of pkg/side/ (floor 2)",
    ]
    # base -> top (in its function) -> part -> base
    assert import_circles(tmp_path, tops=("pkg",)) == [["pkg/high/parts/part.py", "pkg/high/top.py", "pkg/low/base.py"]]


def test_a_folder_without_a_floor_is_named(tmp_path):
    write(tmp_path, "pkg/__init__.py")
    write(tmp_path, "pkg/new/mod.py")
    assert floor_violations(tmp_path, {"pkg/low": 0}, tops=("pkg",)) == [
        "pkg/__init__.py: its folder has no floor; add it to FLOORS (tests/test_floors.py) and to the layout table "
        "of docs/DEVELOPERS.md",
        "pkg/new/mod.py: its folder has no floor; add it to FLOORS (tests/test_floors.py) and to the layout table "
        "of docs/DEVELOPERS.md"]
