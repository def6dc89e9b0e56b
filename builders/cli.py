"""``resetkit build`` and ``resetkit sources``.

Kept light: the builders themselves (pyarrow, datasets) are imported when a command runs.
"""

from __future__ import annotations

import click

from resetkit.cli_options import store_option
from resetkit.errors import ResetkitError

def _parse_sources(items) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ResetkitError(f"--source takes NAME=PATH_OR_HUB_ID, got {item!r}")
        if name.strip() in out:
            raise ResetkitError(f"--source {name.strip()} given twice")
        out[name.strip()] = spec.strip()
    return out


def _parse_only(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise ResetkitError("--only takes NAME[,NAME...], e.g. --only dolly,oasst1")
    return list(dict.fromkeys(names))


@click.command()
@click.argument("corpus")
@click.option("--source", "sources", multiple=True, metavar="NAME=PATH_OR_HUB_ID",
              help="Input of one source: a local file (train split), a folder (train*/validation*/dev*/test* "
                   "files; JSON, JSONL, Parquet, CSV) or a Hub id (repo[:config][@revision]). "
                   "Sources not given load from their default Hub id. Repeatable.")
@click.option("--only", "only", default=None, metavar="NAME[,NAME...]",
              help="Build the corpus from these of its sources alone (the others are not loaded); the "
                   "manifest, card and version id name only them.")
@store_option
@click.option("--template", type=click.Choice(["alpaca", "vicuna", "vicuna-paper", "chat"]), default="alpaca",
              show_default=True, help="Prompt template (vicuna = FastChat vicuna_v1.1; chat = the plain user "
                                      "message, wrapped later with the model's own chat template).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for hold-outs and sampling.")
@click.option("--limit", type=int, default=None, help="Keep at most N rows per source and split (quick builds).")
@click.option("--on-bad-rows", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="Malformed rows: stop with file/line/column, or skip and count them per reason.")
@click.option("--name", default=None, help="Dataset name in the store (default: the corpus name).")
@click.option("--from", "from_refs", multiple=True, metavar="NAME@VERSION",
              help="mtl / reset-seed: the if-train and cd-train versions to mix (default: newest); "
                   "if-eval / cd-eval: the training corpus to check 'unseen' against.")
@click.option("--per-source", type=int, default=None, help="reset-seed: examples per training set [2000].")
@click.option("--max-passages", type=int, default=None, help="QA: passages per context [5].")
@click.option("--gold-passage", type=click.Choice(["swap", "drop"]), default=None,
              help="QA: when the gold passage is beyond --max-passages: swap it in (default) or drop.")
@click.option("--dev-fraction", type=float, default=None, help="if-train: share held out as validation [0.01].")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def build(corpus, sources, only, store_dir, template, seed, limit, on_bad_rows, name, from_refs, per_source,
          max_passages, gold_passage, dev_fraction, progress):
    """Build a corpus into the store as a new versioned dataset.

    CORPUS is one of if-train, if-eval, cd-train, cd-eval, mtl, reset-seed.

    \b
    Examples:
      resetkit build if-train --source dolly=dolly.jsonl --source oasst1=oasst1/ \\
          --source sharegpt=sharegpt.json --source self_instruct=self_instruct.jsonl
      resetkit build cd-train --source nq=nq-dpr/ --source ms_marco=ms_marco/ \\
          --source cnn_dailymail=abisee/cnn_dailymail:3.0.0 --template vicuna
      resetkit build if-train --only dolly,self_instruct \\
          --source dolly=databricks-dolly-15k.jsonl --source self_instruct=gpt3_finetuning_data.jsonl
      resetkit build reset-seed --per-source 2000 --seed 1
      resetkit build mtl --from if-train@3fa2c1 --from cd-train@9b01d2
    """
    from resetkit.store import Store

    from .corpora import CORPORA, build_corpus

    CORPORA.check(corpus)
    version = build_corpus(Store(store_dir), corpus, _parse_sources(sources), name=name,
                           from_refs=from_refs, progress=progress, only=_parse_only(only), template=template, seed=seed,
                           limit=limit, on_bad_rows=on_bad_rows, per_source=per_source,
                           max_passages=max_passages, gold_passage=gold_passage, dev_fraction=dev_fraction)
    rows = ", ".join(f"{s}={n:,}" for s, n in version.num_rows().items())
    dropped = sum(n for r in version.manifest.get("dropped", {}).values() for n in r.values())
    click.echo(f"built {version.ref} ({rows}; {dropped:,} upstream rows dropped) at {version.path}")


@click.command()
@click.option("--corpus", default=None, help="Only the sources of this corpus.")
def sources(corpus):
    """List upstream sources: name, corpus, default Hub id, license and what the rules do.

    \b
    Examples:
      resetkit sources
      resetkit sources --corpus cd-train
    """
    from rich.console import Console
    from rich.table import Table

    from . import sources as registry
    from .corpora import SOURCE_CORPORA

    if corpus is not None and corpus not in SOURCE_CORPORA:
        from resetkit.registry import Registry

        Registry("corpus", dict.fromkeys(SOURCE_CORPORA, "")).check(corpus)
    table = Table(title="upstream sources (pass --source NAME=PATH to read local files)")
    for col in ("name", "corpus", "default input", "license", "rules"):
        table.add_column(col, overflow="fold")
    for name in registry.NAMES:
        src = registry.get(name)
        if corpus and src.role != corpus:
            continue
        table.add_row(name, src.role, src.hub_id or f"(no Hub id) {src.where}", src.license, src.rules)
    Console(width=200).print(table)
