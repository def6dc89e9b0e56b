"""The CLI shell: lazy start-up, did-you-mean, ls and card, every command documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

from resetkit.cli import COMMANDS, SHORT_HELP, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from resetkit.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'duckdb', 'openai', 'deepspeed', 'vllm', 'ray')"
            " if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_unknown_command_suggests():
    result = CliRunner().invoke(main, ["biuld"])
    assert result.exit_code != 0
    assert "Did you mean 'build'" in result.output


def test_ls_and_card(tmp_path):
    from resetkit.store import Store

    store = Store(tmp_path / "s")
    with store.create("if-train", builder="toy", config={}) as w:
        w.write("train", pa.table({"x": [1, 2, 3]}))
    runner = CliRunner()
    result = runner.invoke(main, ["ls", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "if-train" in result.output and "train=3" in result.output
    readme = w.result.path / "README.md"
    readme.write_text("stale")
    result = runner.invoke(main, ["card", "if-train", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert readme.read_text().startswith("---\n") and "if-train" in readme.read_text()
    result = runner.invoke(main, ["ls", "nosuch", "--store", str(store.root)])
    assert result.exit_code != 0 and "no dataset 'nosuch'" in result.output


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"resetkit ([a-z]+)", readme))
    assert set(COMMANDS) <= documented, set(COMMANDS) - documented


def test_every_command_has_a_one_line_summary():
    assert set(SHORT_HELP) == set(COMMANDS)
    result = CliRunner().invoke(main, ["--help"])
    assert all(name in result.output for name in COMMANDS)


def test_the_version_is_the_package_metadata_written_once():
    """`resetkit --version`, resetkit.__version__ and the manifests all read the installed package's
    metadata; pyproject.toml is the one place the number is written."""
    import ast
    import importlib.metadata

    import pytest

    import resetkit

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    assert resetkit.__version__ == importlib.metadata.version("resetkit")
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and resetkit.__version__ in result.output
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == resetkit.__version__ and "version" not in project.get("dynamic", [])
    tree = ast.parse((ROOT / "resetkit" / "__init__.py").read_text())
    literals = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == project["version"]]
    assert not literals, "resetkit/__init__.py writes the version number itself"


def test_every_command_help_has_examples():
    runner = CliRunner()
    missing = []
    for name in COMMANDS:
        result = runner.invoke(main, [name, "--help"])
        if result.exit_code != 0 or "Example" not in result.output:
            missing.append(name)
    assert missing == []


def test_command_whose_module_fails_to_import_says_why(monkeypatch):
    from resetkit import cli

    monkeypatch.setitem(cli.COMMANDS, "broken", "no_such_module_xyz:cmd")
    result = CliRunner().invoke(main, ["broken"])
    assert result.exit_code != 0
    assert "not available" in result.output and "no_such_module_xyz" in result.output


def test_an_os_error_is_one_line_naming_the_path(tmp_path):
    """Any OSError no command turned into a message (here: writing -o into a missing folder) is one
    line naming the path, not a traceback (issue 14: every failure a user can fix is one line)."""
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / "missing-folder" / f"out.{fmt}"
        result = CliRunner().invoke(main, ["sql", "SELECT 1 AS x", "--format", fmt, "-o", str(target),
                                           "--store", str(tmp_path / "s")])
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and str(target) in lines[0], result.output


def test_os_error_messages():
    import errno

    from resetkit.errors import os_error_message

    full = os_error_message(OSError(errno.ENOSPC, "No space left on device", "/data/store/x.parquet"))
    assert full.startswith("/data/store/x.parquet: disk full (No space left on device)")
    assert "run the same command again" in full
    ro = os_error_message(OSError(errno.EROFS, "Read-only file system", "/ro/store"))
    assert ro.startswith("/ro/store: Read-only file system") and "--store" in ro
    moved = os_error_message(OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"))
    assert moved == "/a -> /b: Invalid cross-device link"


def test_shared_options_are_the_same_everywhere():
    """--store, --threads and the engine options come from resetkit/cli_options.py: every command
    that has one has it with the same type, default and help (looped over COMMANDS)."""
    import importlib

    import click

    from resetkit.cli_options import THREADS_HELP

    seen: dict[str, set] = {}
    for name, target in COMMANDS.items():
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        for param in command.params:
            if name == "select" and param.name == "threads":  # DuckDB's threads there, not torch's
                continue
            if param.name in ("store_dir", "threads", "engine", "ray_address"):
                kind = param.type.choices if isinstance(param.type, click.Choice) else param.type.name
                seen.setdefault(param.name, set()).add((tuple(param.opts), str(kind), param.default, param.help
                                                        if param.name != "engine" else ""))
    assert set(seen) == {"store_dir", "threads", "engine", "ray_address"}
    assert all(len(variants) == 1 for variants in seen.values()), seen
    assert next(iter(seen["threads"]))[3] == THREADS_HELP
