"""``make demo``: the whole RESET chain on the bundled samples, on a CPU, offline.

Every step is a real ``resetkit`` command (printed before it runs) over one store:

 1. corpora      resetkit build if-train / cd-train / if-eval / cd-eval / mtl / reset-seed
 2. models       a tiny random Llama (the demo's base model) and a tiny random NLI model
 3. MTL          resetkit train mtl        (DeepSpeed ZeRO-3 on CPU, a few steps)
 4. pool         resetkit pool reset-seed  (the paper's decoding grid, transformers backend)
 5. judges       resetkit judge pool       (span, n-gram, EM, ROUGE-L, SummaC-ZS, LLM judge)
 6. selection    resetkit select pool      (top-1 per example, DuckDB SQL)
 7. RESET        resetkit train reset      (continue the MTL model on the selection)
 8. eval/report  resetkit eval + resetkit report, then a resetkit sql summary

The models are random, so the texts are gibberish: the point is that every stage runs for real
and hands a versioned, inspectable dataset to the next.  The LLM judge talks to a local
stand-in server (resetkit.demo_judge) through the real openai client; nothing leaves the machine.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click


def _run(args: list[str], env: dict, log: list) -> None:
    shown = "resetkit " + " ".join(shlex.quote(a) for a in args)
    click.secho(f"\n$ {shown}", fg="cyan", bold=True)
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "resetkit.cli", *args], env=env)
    log.append((shown, time.time() - started, proc.returncode))
    if proc.returncode:
        raise click.ClickException(f"demo step failed (exit {proc.returncode}): {shown}")


@click.command()
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's store, models and report (replaced on each run).")
@click.option("--steps", default=4, show_default=True, help="Training steps per fine-tune.")
def main(out, steps):
    """Run the whole pipeline on the bundled samples.

    \b
    Example:
      python -m resetkit.demo --out demo-out
    """
    import shutil

    from builders.corpora import sample_sources

    from .demo_judge import DemoJudgeServer
    from .testing import make_tiny_llama, make_tiny_nli

    out = Path(out).resolve()
    marker = out / ".resetkit-demo"
    if out.exists():
        # only ever delete a folder an earlier demo made (or an empty one): --out . must not wipe a repo
        if any(out.iterdir()) and not marker.exists():
            raise click.ClickException(f"{out} exists and is not a resetkit demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker.write_text("made by python -m resetkit.demo; deleted and rebuilt on each run\n")
    store = out / "store"
    models = out / "models"
    env = {**os.environ, "RESETKIT_STORE": str(store), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.cwd() / ".cache" / "torch_extensions"))
    log: list = []
    started = time.time()

    click.secho("== 1. corpora from builders/samples/", bold=True)
    for corpus in ("if-train", "cd-train", "if-eval", "cd-eval"):
        args = ["build", corpus, "--no-progress"]
        for name, path in sample_sources(corpus).items():
            args += ["--source", f"{name}={path}"]
        _run(args, env, log)
    _run(["build", "mtl", "--no-progress"], env, log)
    _run(["build", "reset-seed", "--per-source", "4", "--no-progress"], env, log)
    _run(["ls"], env, log)

    click.secho("\n== 2. demo models (tiny, random, built here)", bold=True)
    base = make_tiny_llama(models / "base")
    nli = make_tiny_nli(models / "nli")
    click.echo(f"base model: {base}\nNLI model:  {nli}")

    train_sets = ["--set", f"max_steps={steps}", "--set", "save_steps=2", "--set", "eval_steps=2",
                  "--set", "per_device_batch_size=4", "--set", "batch_size=4", "--set", "max_length=1024", "--set", "eval_fraction=0.25",
                  "--set", "max_eval_examples=8", "--set", "logging_steps=1"]
    click.secho("\n== 3. MTL fine-tune (DeepSpeed ZeRO-3 on CPU)", bold=True)
    mtl = models / "mtl"
    _run(["train", "mtl", "--model", str(base), "--data", "mtl", "--output", str(mtl), *train_sets], env, log)

    click.secho("\n== 4. candidate pool: the paper's grid on reset-seed", bold=True)
    _run(["pool", "reset-seed", "--model", str(mtl), "--backend", "transformers", "--grid", "paper",
          "--max-new-tokens", "24", "--no-progress"], env, log)

    click.secho("\n== 5. judges", bold=True)
    with DemoJudgeServer() as url:
        judge_env = {**env, "OPENAI_API_KEY": "demo-local-no-key"}  # the stand-in ignores it
        _run(["judge", "pool", "--judges", "span,ngram,em,rouge,summac,llm", "--nli-model", str(nli),
              "--judge-base-url", url, "--quiet"], judge_env, log)

        click.secho("\n== 6. top-1 selection (DuckDB)", bold=True)
        _run(["select", "pool"], env, log)

        click.secho("\n== 7. RESET: continue the MTL model on the selection", bold=True)
        reset = models / "reset"
        _run(["train", "reset", "--model", str(mtl), "--data", "selection", "--output", str(reset),
              *train_sets], env, log)

        click.secho("\n== 8. eval and report", bold=True)
        _run(["eval", "--model", str(reset), "--backend", "transformers", "--per-set", "3", "--per-if-set", "2",
              "--judges", "span,em,rouge,summac,llm", "--label", "demo-reset",
              "--set", "max_new_tokens=24",
              "--judge-set", f"nli_model={nli}", "--judge-set", f"judge_base_url={url}"], judge_env, log)
    _run(["report", "eval", "-o", str(out / "report"), "--selection", "selection"], env, log)
    _run(["sql", "SELECT s.source, count(*) AS selected, round(avg(s.score), 3) AS mean_score, "
                 "sum(CASE WHEN s.greedy THEN 1 ELSE 0 END) AS greedy_winners "
                 "FROM selection s GROUP BY s.source ORDER BY s.source"], env, log)

    click.secho("\n== summary", bold=True)
    for shown, seconds, rc in log:
        click.echo(f"{seconds:7.1f}s  {'ok ' if rc == 0 else 'ERR'}  {shown[:110]}")
    click.echo(f"\nstore:  {store}\nreport: {out / 'report' / 'report.html'}\n"
               f"total:  {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
