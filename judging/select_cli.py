"""``resetkit select``: keep the top-rated candidate per example (DuckDB SQL over the store)."""

from __future__ import annotations

import click

from resetkit.cli_options import store_option


@click.command()
@click.argument("pool")
@click.option("--scores", "scores_ref", default=None,
              help="Scores dataset (NAME[@VERSION]); default: the newest one judged on POOL.")
@click.option("--weight", "weights", multiple=True, metavar="SIGNAL=W",
              help="Weight of a signal: task, instr, faith (default task=1 instr=2 faith=2, the paper's).")
@click.option("--metric", "metrics", multiple=True, metavar="SIGNAL.TASK=METRIC",
              help="Metric standing for a signal on a task, e.g. faith.extractive_qa=span_coverage; "
                   "SIGNAL.TASK=none: no such term for that task (e.g. faith.abstractive_qa=none without "
                   "an NLI model).")
@click.option("--min-score", type=float, default=None, metavar="X",
              help="Leave out examples whose best weighted score is not above X (counted in the card); "
                   "e.g. --min-score 0 drops examples where every candidate scored 0.")
@click.option("--sql", "sql_file", type=click.Path(dir_okay=False), default=None,
              help="A .sql file replacing judging/sql/top1.sql (same relation and parameters).")
@click.option("--name", default="selection", show_default=True, help="Name of the dataset written.")
@click.option("--memory-limit", default="400MB", show_default=True, help="DuckDB memory limit.")
@click.option("--threads", default=0, type=int, help="DuckDB threads (default: min(4, CPUs)).")
@store_option
def select(pool, scores_ref, weights, metrics, min_score, sql_file, name, memory_limit, threads, store_dir):
    """Keep the top-rated candidate per example: the RESET fine-tuning set.

    Per candidate, score = w_task * s_task + w_instr * I_instr * s_instr + w_faith * I_faith *
    s_faith (paper §5.1); per example the eligible candidate with the highest score wins; ties
    go to the lowest sampling temperature, then the smallest candidate_id (the card counts
    them).  The SQL lives in judging/sql/.

    \b
    Examples:
      resetkit select pool
      resetkit select pool@3fa2c1 --scores scores --weight faith=1
      resetkit select pool --metric task.summarization=none --name selection-nosumm
      resetkit select pool --metric faith.abstractive_qa=none --metric faith.summarization=none
      resetkit select pool --min-score 0
      resetkit select pool --sql my_top1.sql
    """
    from resetkit.store import Store

    from .select import SelectConfig, parse_metrics, parse_weights, run_select

    cfg = SelectConfig(**parse_weights(weights), metrics=parse_metrics(metrics), sql=sql_file,
                       memory_limit=memory_limit, threads=threads, min_score=min_score)
    version = run_select(Store(store_dir), pool, scores_ref, cfg, name=name)
    s = version.manifest.get("selection", {})
    below = (f", {s.get('examples_below_min_score', 0):,} not above --min-score {min_score:g}"
             if min_score is not None else "")
    click.echo(f"wrote {version.ref}: {s.get('selected', 0):,} of {s.get('examples_in', 0):,} examples "
               f"selected ({s.get('examples_without_eligible', 0):,} without an eligible candidate{below}); "
               f"{s.get('tied_winners', 0):,} winners decided by the tie-break -> {version.path}")
