"""The import rule of the code layout (docs/design-notes.md, "How the code is laid out").

- core (``resetkit``, and ``datacards``, the card renderer the store calls) imports no stage
  (``builders``, ``judging``, ``training``) and not ``pipeline``;
- a stage imports ``resetkit`` (and ``datacards``) and itself, never another stage nor ``pipeline``;
- ``pipeline`` (orchestration: eval, the demo) may import anything.

Checked statically on the source (ast), every import statement counted wherever it is,
function-level (lazy) imports included, and ``importlib.import_module("...")`` with a constant
name too.  Registry strings (``"builders.cli:build"`` in resetkit/cli.py COMMANDS) are not
imports: they are resolved at run time by name.

Also here: the core has no import cycle (store <-> sql <-> cli_store was one), and no test
module imports from another test module (shared pieces live in tests/helpers or a conftest.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = ("resetkit", "datacards")
STAGES = ("builders", "judging", "training")
PIPELINE = "pipeline"
PACKAGES = CORE + STAGES + (PIPELINE,)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, at any depth of the file."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, one level up per extra dot
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from pkg import mod` imports pkg.mod when mod is a module: count each name
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names if alias.name != "*"]
            out.append((node.lineno, name))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            out.append((node.lineno, node.args[0].value))
    return out


def allowed(importer: str, imported: str) -> bool:
    src, dst = importer.split(".")[0], imported.split(".")[0]
    if dst not in PACKAGES or src == dst or src == PIPELINE:
        return True
    if src in CORE:
        return dst in CORE
    return dst in CORE  # a stage: core only, besides itself


def violations(root: Path, packages=PACKAGES) -> list[str]:
    """Every import that breaks the rule, as 'path:line: importer imports imported'."""
    bad = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            importer = module_name(root, path)
            for line, imported in imports(root, path):
                if not allowed(importer, imported):
                    bad.append(f"{path.relative_to(root)}:{line}: {importer} imports {imported}")
    return sorted(set(bad))


def core_cycles(root: Path, package: str = "resetkit") -> list[list[str]]:
    """Import cycles among the modules of ``package`` (lazy imports included)."""
    modules = {module_name(root, p): p for p in (root / package).rglob("*.py")}
    graph = {m: sorted({i for _, i in imports(root, p) if i in modules and i != m and i != package})
             for m, p in modules.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return cycles


def test_the_repository_keeps_the_import_rule():
    found = violations(REPO)
    assert not found, "core imports a stage, or a stage another stage:\n" + "\n".join(found)


def test_the_checker_sees_every_package_and_the_lazy_imports():
    # guards the test above: it parsed the real tree, and lazy imports are counted
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    assert len(files) > 50
    lazy = imports(REPO, REPO / "pipeline" / "evaluate.py")
    assert any(name.startswith("builders.pool") for _, name in lazy)   # inside run_eval
    assert any(name.startswith("judging.judge") for _, name in lazy)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_checker_catches_synthetic_violations(tmp_path):
    for pkg in PACKAGES:
        _write(tmp_path, f"{pkg}/__init__.py", "")
    _write(tmp_path, "resetkit/store.py", "import os\nfrom .errors import E\nimport datacards.render\n")
    _write(tmp_path, "resetkit/evaluate.py", "def run():\n    from builders.pool import run_pool\n")
    _write(tmp_path, "resetkit/sub/__init__.py", "from ...judging import judge\n")   # relative, too far up
    _write(tmp_path, "resetkit/demo.py", "import importlib\nimportlib.import_module('pipeline.demo')\n")
    _write(tmp_path, "resetkit/cli.py", "COMMANDS = {'build': 'builders.cli:build'}\n")   # a string: fine
    _write(tmp_path, "judging/select.py", "import builders.corpora as c\nfrom resetkit import store\n")
    _write(tmp_path, "training/sft.py", "from judging import text\n")
    _write(tmp_path, "builders/pool.py", "from pipeline import evaluate\nfrom . import templates\n")
    _write(tmp_path, "pipeline/evaluate.py", "from builders.pool import run_pool\nfrom judging import judge\n")
    found = violations(tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == [
        "builders.pool imports pipeline", "builders.pool imports pipeline.evaluate",
        "judging.select imports builders.corpora",
        "resetkit.demo imports pipeline.demo",
        "resetkit.evaluate imports builders.pool", "resetkit.evaluate imports builders.pool.run_pool",
        "resetkit.sub imports judging", "resetkit.sub imports judging.judge",
        "training.sft imports judging", "training.sft imports judging.text",
    ]
    assert found[0].startswith("builders/pool.py:1: ")


def test_the_core_has_no_import_cycle():
    cycles = core_cycles(REPO)
    assert not cycles, "import cycles in resetkit: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    _write(tmp_path, "resetkit/__init__.py", "")
    _write(tmp_path, "resetkit/store.py", "def commit():\n    from .sql import refresh\n")
    _write(tmp_path, "resetkit/sql.py", "from .cli_store import store_option\n")
    _write(tmp_path, "resetkit/cli_store.py", "from .store import Store\n")
    _write(tmp_path, "resetkit/errors.py", "")
    assert core_cycles(tmp_path) == [["resetkit.cli_store", "resetkit.store", "resetkit.sql",
                                      "resetkit.cli_store"]]


def test_no_test_module_imports_another_test_module():
    """Fixtures and helpers shared by several test files live in tests/helpers or a conftest.py."""
    bad = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for line, name in imports(REPO, path):
            if any(part.startswith("test_") for part in name.split(".")) and "tests" in name.split(".")[:1]:
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert not bad, "\n".join(bad)


def test_dataset_schemas_live_in_resetkit_schemas():
    """Every stored dataset's Arrow schema is a module constant of resetkit/schemas.py, nowhere else
    (a schema built inside a function, e.g. for an upstream file's columns, is not a dataset's)."""
    bad = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if path == REPO / "resetkit" / "schemas.py":
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                value = getattr(node, "value", None)
                if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Attribute) and value.func.attr == "schema"):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not bad, "dataset schemas outside resetkit/schemas.py: " + ", ".join(bad)
    from resetkit import schemas

    assert {"EXAMPLES", "CANDIDATES", "SCORES", "SELECTION", "EVAL"} <= set(vars(schemas))


def test_every_package_of_the_layout_is_in_the_wheel():
    """pyproject.toml lists the top-level packages explicitly: a new one (pipeline) must be added."""
    import pytest
    from setuptools import find_packages

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    packaged = set(find_packages(str(REPO), include=include))
    on_disk = {module_name(REPO, p.parent) for pkg in PACKAGES for p in (REPO / pkg).rglob("__init__.py")}
    assert on_disk <= packaged, sorted(on_disk - packaged)
    assert "tests" not in {p.split(".")[0] for p in packaged}
