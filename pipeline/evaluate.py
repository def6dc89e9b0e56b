"""``resetkit eval``: greedy generation on the evaluation suite, judged, as one eval dataset.

The paper (§5, A.3) evaluates each model with greedy decoding, at most 480 new tokens, on
1,000 sampled examples per context-dependent test set — CNN/DM, MS MARCO, NQ (seen in
training) and WikiSum, SearchQA, BioASQ (unseen) — and on the instruction-following sets
Alpaca, Vicuna-80 and Koala-180 (100 per set), with the same judges as RESET uses.

This module is orchestration (the ``pipeline`` package, the one place that imports several
stages; docs/design-notes.md, "How the code is laid out")::

    corpora (cd-eval, cd-train test split, if-eval)
      -> <name>-examples   seeded sample per source (EXAMPLES schema)
      -> <name>-pool       builders.pool.run_pool, grid "greedy"
      -> <name>-scores     judging.judge.run_judges
      -> <name>            one row per example (resetkit.schemas.EVAL), lineage to all of the above

The intermediate datasets get their own names so an eval never moves the ``pool`` /
``scores`` datasets of a RESET run.  Lengths: ``gen_tokens`` and ``gold_tokens`` are counted
with one rule for both texts — the model's tokenizer (no special tokens) when it can be
loaded, else whitespace-separated words; the rule used is in the column ``length_unit``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import click
import pyarrow as pa
from builders.backends import BACKENDS

from resetkit.cli_options import RegistryChoice, engine_options, store_option, threads_option
from resetkit.config import build, field, load_yaml, parse_overrides, parse_sets, to_dict
from resetkit.errors import ResetkitError
from resetkit.schemas import EVAL

# the EVAL column of each selection signal; which metric stands for a signal on each task is
# declared by the judges (DESIGN.md §5; judging.api.default_metrics, the selection's default map)
SIGNAL_COLUMNS = {"faith": "faithfulness", "instr": "instruction", "task": "task_score"}


def signals() -> dict[str, dict[str, str]]:
    """task -> {EVAL column: metric}, e.g. extractive_qa -> {faithfulness: span_coverage, ...}."""
    from judging.api import default_metrics

    out: dict[str, dict[str, str]] = {}
    for key, metric in default_metrics().items():
        signal, _, task = key.partition(".")
        out.setdefault(task, {})[SIGNAL_COLUMNS[signal]] = metric
    return out


@dataclass(frozen=True)
class SuitePart:
    corpus: str          # the EvalConfig field naming the corpus dataset
    split: str
    sources: tuple
    seen: bool
    per: str             # the EvalConfig field giving the sample size per source


SUITES = {
    "paper": (
        SuitePart("cd_train", "test", ("cnn_dailymail", "ms_marco", "nq"), True, "per_set"),
        SuitePart("cd_eval", "test", ("wikisum", "searchqa", "bioasq"), False, "per_set"),
        # Alpaca, Vicuna-80 and Koala-180 are held out of instruction training as well
        SuitePart("if_eval", "test", ("alpaca", "vicuna", "koala"), False, "per_if_set"),
    ),
}


@dataclass(frozen=True)
class EvalConfig:
    model: str = field("", help="model to evaluate: local folder or Hub id (or the served name for openai)")
    backend: str = field("transformers", help="generation backend (builders.backends.BACKENDS)")
    suite: str = field("paper", help=f"evaluation suite: {', '.join(SUITES)}")
    per_set: int = field(1000, help="examples sampled per context-dependent source (paper: 1000)")
    per_if_set: int = field(100, help="examples sampled per instruction-following source (paper: 100)")
    seed: int = field(0, help="seed of the example sample (and of the run's identity in the report)")
    max_new_tokens: int = field(480, help="generation limit (paper A.3: 480)")
    judges: tuple = field(("span", "em", "rouge", "summac", "llm"), help="judges to run")
    label: str = field("", help="name of the configuration in reports (default: the model name)")
    cd_train: str = field("cd-train", help="corpus with the seen context-dependent test sets")
    cd_eval: str = field("cd-eval", help="corpus with the unseen context-dependent test sets")
    if_eval: str = field("if-eval", help="corpus with the instruction-following eval sets")
    length_unit: str = field("auto", help="auto | tokenizer | whitespace: how gen/gold lengths are counted")
    tokenizer: str = field("", help="tokenizer for lengths (default: the model)")
    template: str = field("", help=(
        "prompt template: '' (the examples' own, e.g. the paper's alpaca/vicuna prompts), chat (the "
        "model's own chat template, as `resetkit train` renders chat examples), alpaca, vicuna"))
    system_prompt: str = field("", help="chat template: the system message (default: none)")
    pool: dict = field(default_factory=dict, help="extra PoolConfig fields or options of the backend (e.g. "
                                                  "base_url, batch_size)")
    judge: dict = field(default_factory=dict, help="options per judge, {NAME: {FIELD: VALUE}} (e.g. "
                        "{summac: {model: ./nli}}; `resetkit judge --help` lists them)")


# -- step 1: the example sample ---------------------------------------------------------------

def _rank(seed: int, example_id: str) -> str:
    """Seeded order independent of storage order; a larger sample contains a smaller one."""
    return hashlib.sha256(f"{seed}:{example_id}".encode()).hexdigest()


def sample_examples(store, cfg: EvalConfig, *, name: str):
    """Write ``<name>-examples``: up to per_set / per_if_set examples per suite source."""
    import pyarrow.compute as pc

    from resetkit.schemas import EXAMPLES, check_columns

    if cfg.suite not in SUITES:
        from resetkit.registry import suggest
        raise ResetkitError(f"unknown suite {cfg.suite!r}.{suggest(cfg.suite, SUITES)} Suites: {', '.join(SUITES)}")
    if cfg.per_set < 1 or cfg.per_if_set < 1:
        raise ResetkitError(f"per_set and per_if_set must be at least 1 (got {cfg.per_set}, {cfg.per_if_set})")
    parts, corpora, seen, missing = [], [], {}, []
    for part in SUITES[cfg.suite]:
        corpus = store.resolve(getattr(cfg, part.corpus))
        check_columns(corpus.schema, EXAMPLES.names, "examples corpus", corpus.ref)
        corpora.append(corpus)
        ids = corpus.read(part.split, columns=["id", "source"])
        n = getattr(cfg, part.per)
        chosen = []
        for src in part.sources:
            src_ids = ids.filter(pc.equal(ids["source"], src))["id"].to_pylist()
            if not src_ids:
                missing.append(f"{src} ({corpus.ref} split {part.split})")
                continue
            chosen += sorted(set(src_ids), key=lambda i: _rank(cfg.seed, i))[:n]
            seen[src] = part.seen
        table = corpus.read(part.split).select(EXAMPLES.names).cast(EXAMPLES)
        parts.append(table.filter(pc.is_in(table["id"], pa.array(chosen, pa.string()))))
    if not seen:
        raise ResetkitError(f"no example of suite {cfg.suite!r} found: missing {', '.join(missing)}")
    table = pa.concat_tables(parts).sort_by([("source", "ascending"), ("id", "ascending")])
    config = {"suite": cfg.suite, "per_set": cfg.per_set, "per_if_set": cfg.per_if_set, "seed": cfg.seed}
    with store.create(f"{name}-examples", builder="eval-examples", config=config, parents=corpora) as w:
        w.write("test", table, schema=EXAMPLES)
        w.extra.update({"seen": seen, "missing_sources": missing})
        w.card_meta["pretty_name"] = f"resetkit eval sample ({cfg.suite})"
        w.card_sections["Sample"] = (
            f"Seeded sample (seed {cfg.seed}) of the `{cfg.suite}` suite: {cfg.per_set} per "
            f"context-dependent source, {cfg.per_if_set} per instruction-following source."
            + (f" Missing sources: {', '.join(missing)}." if missing else ""))
    return w.result, seen, missing


# -- step 4: one row per example ----------------------------------------------------------------

def _length_counter(cfg: EvalConfig):
    """Return (unit, count(texts) -> [int]): the model's tokenizer if loadable, else whitespace."""
    if cfg.length_unit not in ("auto", "tokenizer", "whitespace"):
        raise ResetkitError(f"length_unit must be auto, tokenizer or whitespace, not {cfg.length_unit!r}")
    name = cfg.tokenizer or cfg.model
    if cfg.length_unit == "whitespace" or (cfg.length_unit == "auto" and cfg.backend == "openai"
                                           and not cfg.tokenizer):
        return "whitespace", _count_words
    try:
        from transformers import AutoTokenizer

        from resetkit.models import resolve_model

        tok = AutoTokenizer.from_pretrained(resolve_model(name).path)   # a .gguf: its converted folder
    except Exception as exc:  # noqa: BLE001 - any load failure means: no tokenizer here
        if cfg.length_unit == "tokenizer":
            raise ResetkitError(f"cannot load tokenizer {name!r} to count lengths: {exc}") from exc
        return "whitespace", _count_words

    def count(texts):
        return [len(ids) for ids in tok([t or "" for t in texts], add_special_tokens=False)["input_ids"]]
    return f"tokenizer:{name}", count


def _count_words(texts) -> list[int]:
    return [len((t or "").split()) for t in texts]


def _number(value):
    """NaN (a judge that could not score) is stored as null, like a missing score."""
    return None if value is None or value != value else float(value)


def eval_rows(examples, pool, scores, seen: dict, cfg: EvalConfig) -> pa.Table:
    """Join examples, the greedy candidates and the long score table into EVAL rows."""
    ex = {r["id"]: r for r in examples.read().to_pylist()}
    metrics: dict[str, dict] = {}
    for r in scores.read(columns=["candidate_id", "metric", "value"]).to_pylist():
        metrics.setdefault(r["candidate_id"], {})[r["metric"]] = _number(r["value"])
    judge_versions = json.dumps(scores.manifest.get("judge_versions") or {}, sort_keys=True)
    unit, count = _length_counter(cfg)
    label = cfg.label or cfg.model
    rows, done = [], set()
    by_task = signals()
    cands = sorted(pool.read().to_pylist(), key=lambda c: (c["example_id"], c.get("sample_index") or 0,
                                                           c["candidate_id"]))
    for c in cands:
        if c["example_id"] in done:  # the greedy grid gives one candidate; keep the first if more
            continue
        done.add(c["example_id"])
        e = ex[c["example_id"]]
        m = metrics.get(c.get("duplicate_of") or c["candidate_id"], {})
        signal = by_task.get(e["task"], {})
        rows.append({
            "example_id": e["id"], "source": e["source"], "task": e["task"], "objective": e["objective"],
            "seen": seen.get(e["source"], False), "prompt": e["prompt"], "generation": c["text"],
            "gold": e["response"], "length_unit": unit, "finish_reason": c.get("finish_reason"),
            "faithfulness": m.get(signal.get("faithfulness")) if "faithfulness" in signal else None,
            "instruction": m.get(signal.get("instruction")) if "instruction" in signal else None,
            "task_score": m.get(signal.get("task_score")) if "task_score" in signal else None,
            "metrics": json.dumps(m, sort_keys=True), "candidate_id": c["candidate_id"],
            "model": c.get("model") or cfg.model, "model_revision": c.get("model_revision"),
            "label": label, "seed": cfg.seed, "suite": cfg.suite, "judge_versions": judge_versions,
            "error": c.get("error"),
        })
    if not rows:
        return EVAL.empty_table()
    gen = count([r["generation"] for r in rows])
    gold = count([r["gold"] for r in rows])
    for r, g, o in zip(rows, gen, gold):
        r["gen_tokens"], r["gold_tokens"] = g, o
    return pa.Table.from_pylist(rows, schema=EVAL)


# -- the whole run ------------------------------------------------------------------------------

def run_eval(store, model: str | None, cfg: EvalConfig, *, name: str = "eval", progress: bool = True,
             engine: str = "local", ray_address: str | None = None):
    """Sample, generate, judge and write the eval dataset ``name``; returns its DatasetVersion.

    ``engine="ray"`` runs generation (transformers/vllm; an openai backend only sends requests
    and stays local) and the model judges on Ray (docs/ray.md); how it ran is not part of
    the eval's identity, so both engines give the same versions.
    """
    from resetkit import runlog
    from resetkit.engine import check_engine

    engine = check_engine(engine, ray_address)
    from builders.pool import pool_config, pool_identity, run_pool
    from judging.judge import JudgeConfig, run_judges

    if model:
        cfg = dataclasses.replace(cfg, model=model)
    if not cfg.model:
        raise ResetkitError("no model given (--model)")
    examples, seen, missing = sample_examples(store, cfg, name=name)
    con = runlog.current()
    base = {"grid": "greedy", "max_new_tokens": cfg.max_new_tokens, "backend": cfg.backend, "model": cfg.model}
    if cfg.template:
        base["template"] = cfg.template
    if cfg.system_prompt:
        base["system_prompt"] = cfg.system_prompt
    pool_cfg = pool_config(base, cfg.pool)
    con.echo(f"[resetkit] {examples.ref}: {sum(examples.num_rows().values())} examples; generating greedily "
             f"with {cfg.model} ({cfg.backend}, template {pool_cfg.template or 'as built'})")
    if engine == "ray" and pool_cfg.backend != "openai":
        pool_cfg = dataclasses.replace(pool_cfg, engine="ray", ray_address=ray_address)
    pool = run_pool(store, examples.ref, pool_cfg, name=f"{name}-pool", progress=progress)
    con.echo(f"[resetkit] {pool.ref}: candidates written; judging with {', '.join(cfg.judges)}")
    judge_cfg = build(JudgeConfig, {"judge": cfg.judge})
    scores = run_judges(store, pool.ref, judges=list(cfg.judges), cfg=judge_cfg, name=f"{name}-scores",
                        progress=progress, engine=engine, ray_address=ray_address)
    table = eval_rows(examples, pool, scores, seen, cfg)
    lost = _without_candidate(examples, table)
    if table.num_rows == 0:
        raise ResetkitError(f"{pool.ref} has no candidate for any example of {examples.ref}: nothing to evaluate")
    # how the pool ran (server URL, batch size...) is not part of what the eval is
    config = {**to_dict(cfg), "judge": {n: _public(o) for n, o in cfg.judge.items()},
              "pool": pool_identity(_public(cfg.pool), cfg.backend)}
    for key in ("template", "system_prompt"):   # unset: not part of the identity (older versions keep theirs)
        if not config[key]:
            config.pop(key)
    with store.create(name, builder="eval", config=config, parents=[examples, pool, scores],
                      inputs={"model": pool.manifest.get("inputs", {}).get("model", cfg.model)}) as w:
        w.write("test", table, schema=EVAL)
        for source, n in sorted(lost.items()):
            w.add_drop(source, "no candidate in the pool (e.g. empty prompt)", n)
        w.extra["run"] = {"pool": _public(cfg.pool)}
        w.extra.update({"examples": examples.ref, "pool": pool.ref, "scores": scores.ref,
                        "judge_versions": scores.manifest.get("judge_versions") or {},
                        "seen": seen, "missing_sources": missing, "length_unit": table["length_unit"][0].as_py()
                        if table.num_rows else None})
        w.card_meta["pretty_name"] = f"resetkit eval of {cfg.label or cfg.model}"
        w.card_sections["Evaluation"] = _card_text(cfg, table, missing)
    return w.result


def _without_candidate(examples, table: pa.Table) -> dict[str, int]:
    """Sampled examples that got no row (the pool skips empty prompts), counted per source."""
    have = set(table["example_id"].to_pylist())
    lost: dict[str, int] = {}
    for r in examples.read(columns=["id", "source"]).to_pylist():
        if r["id"] not in have:
            lost[r["source"]] = lost.get(r["source"], 0) + 1
    return lost


def _public(options: dict) -> dict:
    """Options as they may be written down: anything that looks like a secret is left out."""
    import re

    secret = re.compile(r"(^|_)(api_key|key|token|secret|password)$", re.I)
    return {k: v for k, v in (options or {}).items() if not secret.search(k)}


def template_words(cfg: EvalConfig) -> str:
    """How the prompts were written, for the card."""
    if cfg.template == "chat":
        return ("the model's own chat template (`chat`: the tokenizer's `apply_chat_template` with the "
                "generation prompt" + (f", system prompt {cfg.system_prompt!r})" if cfg.system_prompt
                                       else ", no system prompt)"))
    if cfg.template:
        return f"the `{cfg.template}` template"
    return "each example's own template (as the corpus was built)"


def _card_text(cfg: EvalConfig, table: pa.Table, missing: list) -> str:
    """The card's Evaluation section: what was run and the mean score per source."""
    lines = [f"Greedy generation (max {cfg.max_new_tokens} new tokens) by `{cfg.model}` "
             f"({cfg.backend}) on the `{cfg.suite}` suite, seed {cfg.seed}; judges: "
             f"{', '.join(cfg.judges)}. One row per example; scores are null where no judge scored.", "",
             f"Prompts: {template_words(cfg)}.", "",
             "| source | seen | rows | faithfulness | instruction | task | mean gen length | mean gold length |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    if table.num_rows:
        cols = ["faithfulness", "instruction", "task_score", "gen_tokens", "gold_tokens"]
        stats = table.group_by(["source", "seen"]).aggregate([("source", "count")] + [(c, "mean") for c in cols])
        for r in sorted(stats.to_pylist(), key=lambda r: (not r["seen"], r["source"])):
            cells = ["–" if r[f"{c}_mean"] is None else f"{r[f'{c}_mean']:.3f}" for c in cols[:3]]
            cells += ["–" if r[f"{c}_mean"] is None else f"{r[f'{c}_mean']:.1f}" for c in cols[3:]]
            lines.append(f"| {r['source']} | {'yes' if r['seen'] else 'no'} | {r['source_count']} | "
                         + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Sources not found in the corpora: {', '.join(missing)}."]
    lines += ["", "The paper's Table 4 (macro-averages, plots, HTML page): `resetkit report <this dataset>`."]
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------

@click.command("eval")
@click.option("--model", default=None, help="Model to evaluate (local folder, Hub id, or served name).")
@click.option("--backend", type=RegistryChoice(BACKENDS), default=None,
              help="Generation backend (default transformers).")
@click.option("--suite", default=None, help="Evaluation suite (default paper).")
@click.option("--per-set", type=int, default=None, help="Examples per context-dependent source (1000).")
@click.option("--per-if-set", type=int, default=None, help="Examples per instruction-following source (100).")
@click.option("--seed", type=int, default=None, help="Seed of the example sample (0).")
@click.option("--judges", default=None, help="Comma-separated judges (span,em,rouge,summac,llm).")
@click.option("--label", default=None, help="Configuration name in reports (default: the model).")
@click.option("--template", default=None,
              help="Prompt template: chat (the model's own chat template), alpaca, vicuna; default: the "
                   "examples' own.")
@click.option("--system-prompt", default=None, help="chat template: the system message.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML preset of EvalConfig fields.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override an EvalConfig field, e.g. --set max_new_tokens=64.")
@click.option("--pool-set", multiple=True, metavar="KEY=VALUE",
              help="Extra PoolConfig field or option of the backend, e.g. base_url=URL.")
@click.option("--judge-set", multiple=True, metavar="NAME.FIELD=VALUE",
              help="A judge's option, e.g. --judge-set summac.model=./nli (`resetkit judge --help` lists them).")
@engine_options("Generate and judge here, or on Ray actors holding the models (docs/ray.md).")
@click.option("--name", default="eval", show_default=True, help="Name of the eval dataset.")
@threads_option
@store_option
def eval_command(model, backend, suite, per_set, per_if_set, seed, judges, label, template, system_prompt,
                 config_file, overrides, pool_set, judge_set, engine, ray_address, name, threads, store_dir):
    """Generate greedily on the evaluation suite, judge it, and write an eval dataset.

    Samples --per-set examples per context-dependent source (CNN/DM, MS MARCO, NQ from the
    cd-train test split; WikiSum, SearchQA, BioASQ from cd-eval) and --per-if-set per
    instruction-following source (Alpaca, Vicuna-80, Koala-180 from if-eval), generates at
    most 480 new tokens greedily, scores with the judges, and writes NAME (plus
    NAME-examples, NAME-pool, NAME-scores).

    \b
    Examples:
      resetkit eval --model ./outputs/reset --backend vllm
      resetkit eval --model /shared/outputs/reset --backend vllm --engine ray --ray-address auto
      resetkit eval --model ./outputs/mtl --label "w/ MTL" --seed 1 --name eval-mtl-s1
      resetkit eval --model ./SmolLM2-135M-Instruct.Q4_1.gguf --template chat --per-set 5 --per-if-set 2
      resetkit eval --model tiny --per-set 5 --per-if-set 2 --judges span,em,rouge \\
          --set max_new_tokens=32
    """
    from resetkit.store import Store

    from resetkit.threads import apply_threads

    apply_threads(threads)  # generation and the NLI judge in this process
    cli = {k: v for k, v in {"model": model, "backend": backend, "suite": suite, "per_set": per_set,
                             "per_if_set": per_if_set, "seed": seed, "label": label, "template": template,
                             "system_prompt": system_prompt}.items() if v is not None}
    if judges is not None:
        cli["judges"] = tuple(j.strip() for j in judges.split(",") if j.strip())
    extra = {}
    if pool_set:
        extra["pool"] = parse_overrides(pool_set)
    if judge_set:
        extra["judge"] = parse_sets([f"judge.{item}" for item in judge_set], ("judge",))["judge"]
    cfg = build(EvalConfig, load_yaml(config_file) if config_file else {}, parse_overrides(overrides),
                cli, extra)
    from resetkit import runlog

    store = Store(store_dir)
    with runlog.capture(runlog.store_log_path(store.root, "eval", name), header=f"resetkit eval --name {name}") as con:
        con.echo(f"[resetkit] log: {con.log_path or 'terminal (RESETKIT_VERBOSE)'}")
        result = run_eval(store, None, cfg, name=name, engine=engine, ray_address=ray_address)
    click.echo(f"wrote {result.ref}: {sum(result.num_rows().values())} rows ({result.path})")
    click.echo(f"next: resetkit report {result.ref} -o report/")
