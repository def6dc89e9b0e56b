"""``resetkit train``: bad input fails fast with a clear message, before any heavy import or launch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from .helpers import REPO, cli_env

HEAVY = ("torch", "transformers", "deepspeed", "datasets")

# runs each argv through the real CLI in one fresh interpreter and reports the error text and
# which heavy modules got imported by then
PROBE = r"""
import json, sys
from resetkit.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    try:
        main(argv, standalone_mode=False)
        err = None
    except Exception as exc:
        err = getattr(exc, "format_message", lambda: str(exc))()
    out.append({"error": err, "heavy": [m for m in %r if m in sys.modules]})
print(json.dumps(out))
""" % (HEAVY,)


def probe(cases: list[list[str]]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bad_input_fails_before_heavy_imports(train_store, tiny_llama, tmp_path):
    s = ["--store", str(train_store.root), "--output", str(tmp_path / "o")]
    m = ["--model", str(tiny_llama)]
    cases = {
        "no-columns": ["train", "reset", *m, "--data", "no-response", *s],
        "unknown-recipe": ["train", "rest", *m, *s],
        "no-model": ["train", "reset", "--model", str(tmp_path / "nope"), "--data", "sel", *s],
        "no-dataset": ["train", "reset", *m, "--data", "selecton", *s],
        "bad-key": ["train", "reset", *m, "--data", "sel", "--set", "lerning_rate=1", *s],
        "bad-value": ["train", "reset", *m, "--data", "sel", "--set", "batch_size=many", *s],
        "bad-deepspeed": ["train", "reset", *m, "--data", "sel", "--deepspeed", "zero4", *s],
        "two-stage-data": ["train", "cd-then-if", *m, "--data", "cd-train", *s],
        "two-stage-stage": ["train", "cd-then-if", *m, "--data", "iff=if-train", *s],
        "nothing-to-resume": ["train", "reset", *m, "--data", "sel", "--resume", *s],
        "hub-id-offline": ["train", "reset", "--model", "nobody/no-such-model", "--data", "sel", *s],
    }
    results = dict(zip(cases, probe(list(cases.values()))))
    expect = {
        "no-columns": r"training dataset no-response@\w+ \(.*train-00000-of-00001.parquet\) is missing column\(s\): response",
        "unknown-recipe": r"unknown recipe 'rest'\. Did you mean 'reset'\?",
        "no-model": r"model path does not exist: .*nope",
        "no-dataset": r"no dataset 'selecton'.*Did you mean 'selection'",
        "bad-key": r"unknown config key 'lerning_rate'.*Did you mean 'learning_rate'",
        "bad-value": r"batch_size.*cannot read 'many' as int",
        "bad-deepspeed": r"unknown DeepSpeed config 'zero4'\. Did you mean 'zero3'",
        "two-stage-data": r"stages cd, if: give data per stage as --data STAGE=DATASET",
        "two-stage-stage": r"no stage 'iff'\. Did you mean 'if'",
        "nothing-to-resume": r"--resume: no training run in",
        "hub-id-offline": r"neither a local folder nor in the Hugging Face cache",
    }
    import re

    for name, pattern in expect.items():
        r = results[name]
        assert r["error"] and re.search(pattern, r["error"]), (name, r["error"])
        assert r["heavy"] == [], (name, r["heavy"])
    assert not (tmp_path / "o").exists()      # nothing written for a refused run


def test_nproc_prints_the_launcher_command(train_store, tiny_llama, tmp_path):
    from resetkit.cli import main

    out = tmp_path / "o"
    base = ["train", "reset", "--model", str(tiny_llama), "--data", "sel", "--store", str(train_store.root),
            "--output", str(out), "--dry-run"]
    res = CliRunner().invoke(main, [*base, "--nproc", "8"])
    assert res.exit_code == 0, res.output
    cmd = [line for line in res.output.splitlines() if line.startswith("# command: ")][0].split()[2:]
    assert cmd[0].endswith("deepspeed") and cmd[cmd.index("--num_gpus") + 1] == "8"
    assert cmd[-3:] == ["--module", "training.worker", str(out / "resetkit-train.yaml")]
    assert "--no_local_rank" in cmd
    assert f"data:\n    - {train_store.resolve('sel').ref}" in res.output      # the plan, pinned

    hostfile = tmp_path / "hosts"
    hostfile.write_text("worker-0 slots=8\nworker-1 slots=8\n")
    res = CliRunner().invoke(main, [*base, "--hostfile", str(hostfile), "--resume"])
    assert "--resume: no training run" in res.output       # resume is checked before launching

    res = CliRunner().invoke(main, [*base, "--hostfile", str(hostfile)])
    cmd = [line for line in res.output.splitlines() if line.startswith("# command: ")][0]
    assert f"--hostfile {hostfile}" in cmd and "--num_gpus" not in cmd

    res = CliRunner().invoke(main, [*base, "--nproc", "2", "--launcher", "torchrun"])
    cmd = [line for line in res.output.splitlines() if line.startswith("# command: ")][0].split()[2:]
    assert cmd[0].endswith("torchrun") and cmd[cmd.index("--nproc_per_node") + 1] == "2"
    assert cmd[-3:] == ["-m", "training.worker", str(out / "resetkit-train.yaml")]
    assert not out.exists()     # a dry run writes nothing


def test_existing_run_needs_resume(train_store, tiny_llama, tmp_path):
    from resetkit.cli import main

    out = tmp_path / "o"
    (out / "checkpoint-100").mkdir(parents=True)
    res = CliRunner().invoke(main, ["train", "reset", "--model", str(tiny_llama), "--data", "sel",
                                    "--store", str(train_store.root), "--output", str(out)])
    assert res.exit_code == 2 and "already holds a training run: pass --resume" in res.output


def test_single_process_env_fills_only_what_is_missing():
    from training.launch import single_process_env

    env = {"MASTER_PORT": "1234"}
    added = single_process_env(env)
    assert env["RANK"] == "0" and env["WORLD_SIZE"] == "1" and env["LOCAL_RANK"] == "0"
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["MASTER_PORT"] == "1234" and "MASTER_PORT" not in added
    env2: dict = {}
    single_process_env(env2)
    assert 1024 <= int(env2["MASTER_PORT"]) < 65536


def test_help_has_examples():
    from resetkit.cli import main

    res = CliRunner().invoke(main, ["train", "--help"])
    assert res.exit_code == 0 and "Examples:" in res.output and "cd-then-if" in res.output


@pytest.mark.slow
def test_nproc_two_really_runs(train_store, tiny_llama, tmp_path):
    """Two CPU processes through the deepspeed launcher (slow: two interpreters, gloo)."""
    from .helpers import run_train

    out = tmp_path / "o"
    proc = run_train(["reset", "--model", tiny_llama, "--data", "sel", "--store", train_store.root,
                      "--output", out, "--nproc", "2", "--set", "max_steps=2", "--set", "save_steps=2",
                      "--set", "eval_steps=2", "--set", "batch_size=4", "--set", "max_length=64"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "--num_gpus 2" in proc.stderr
    results = json.loads((out / "training_results.json").read_text())
    assert results["world_size"] == 2 and results["per_device_batch_size"] == 2


def test_template_options_go_into_the_plan(train_store, tiny_llama, tmp_path):
    from resetkit.cli import main

    res = CliRunner().invoke(main, ["train", "reset", "--model", str(tiny_llama), "--data", "sel",
                                    "--store", str(train_store.root), "--output", str(tmp_path / "o"), "--dry-run",
                                    "--template", "chat", "--system-prompt", "Note: be brief.",
                                    "--save-total-limit", "3"])
    assert res.exit_code == 0, res.output
    assert "template: chat" in res.output and "system_prompt: 'Note: be brief.'" in res.output
    assert "save_total_limit: 3" in res.output
    res = CliRunner().invoke(main, ["train", "reset", "--model", str(tiny_llama), "--data", "sel", "--dry-run",
                                    "--store", str(train_store.root), "--output", str(tmp_path / "o")])
    assert "template: auto" in res.output and "save_total_limit: 2" in res.output     # the defaults
    res = CliRunner().invoke(main, ["train", "reset", "--model", str(tiny_llama), "--data", "sel", "--dry-run",
                                    "--store", str(train_store.root), "--set", "save_total_limit=-1"])
    assert res.exit_code == 2 and "save_total_limit must be 0 (keep all) or more" in res.output
