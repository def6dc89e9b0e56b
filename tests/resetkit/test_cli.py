"""The CLI shell: lazy start-up, did-you-mean, ls and card, every command documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

from resetkit.cli import COMMANDS, main

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
