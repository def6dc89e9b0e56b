"""``resetkit judge``: score a candidate pool with the external judges (DESIGN.md §5)."""

from __future__ import annotations

import json

import click

from resetkit.cli_options import engine_options, store_option, threads_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("pool", default="pool")
@click.option("--judges", default="span,ngram,em,rouge,summac,llm", show_default=True,
              help="Comma-separated judges: span, ngram, em, rouge, summac, llm.")
@click.option("--nli-model", default=None, help="SummaC NLI checkpoint (Hub id or local dir; "
                                                "default tals/albert-xlarge-vitaminc-mnli).")
@click.option("--nli-entailment-idx", type=int, default=None, help="Override the entailment label index.")
@click.option("--nli-contradiction-idx", type=int, default=None,
              help="Override the contradiction label index.")
@click.option("--summac-contradiction", is_flag=True, default=None,
              help="Contradiction-aware SummaC-ZS (ent - con, in [-1, 1]) instead of entailment only.")
@click.option("--nli-device", default=None, help="auto, cpu, cuda, cuda:N.")
@click.option("--judge-model", default=None, help="LLM judge model (default gpt-4-0613).")
@click.option("--judge-base-url", default=None,
              help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (a key in its query, "
                   "?api-key=..., is sent and never shown). The key is $OPENAI_API_KEY, needed "
                   "up front only for OpenAI's own API.")
@click.option("--judge-prompt", default=None, help="paper (Table 5, default) or single-v1 (FastChat), "
                                                   "or a prompt .yaml file.")
@click.option("--judge-concurrency", type=int, default=None, help="LLM requests in flight (default 32).")
@click.option("--judge-prices", default=None, type=click.Path(dir_okay=False),
              help="YAML of USD per 1M tokens {model: {input: X, output: Y}}.")
@click.option("--max-usd", type=float, default=None,
              help="Hard cap on the LLM judge's spend: no request starts whose worst case could cross it.")
@click.option("--dry-run", is_flag=True,
              help="Print what would be judged (calls, tokens, USD); write nothing.")
@click.option("--batch", is_flag=True, default=None,
              help="LLM judge through the OpenAI Batch API (half price).")
@click.option("--no-wait", is_flag=True,
              help="With --batch: submit (or check) the batch and exit; rerun to collect.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of JudgeConfig keys (command-line options win).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any JudgeConfig key.")
@engine_options("Score here, or on Ray actors holding the models (the LLM judge stays here; docs/ray.md).",
                "ray: judge actors (default: as many as fit).")
@click.option("--name", default="scores", show_default=True, help="Name of the scores dataset.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@threads_option
@store_option
def judge(pool, judges, nli_model, nli_entailment_idx, nli_contradiction_idx, summac_contradiction,
          nli_device, judge_model, judge_base_url, judge_prompt, judge_concurrency, judge_prices, max_usd,
          dry_run, batch, no_wait, config_file, overrides, engine, ray_address, workers, name, quiet,
          threads, store_dir):
    """Score the candidates of POOL (default: pool) and write the long scores table.

    Each judge scores the candidates whose task it covers: span/ngram/em on extractive
    QA, rouge/summac on abstractive QA and summarisation, llm on open-ended
    instructions.  Only (candidate, judge, version) rows not in the newest earlier
    scores of the same pool are computed; identical texts of an example are judged once.
    span, ngram, em and rouge run on C kernels on several threads
    (RESETKIT_NATIVE_THREADS; RESETKIT_NATIVE=0 for the pure-Python paths).

    \b
    Examples:
      resetkit judge pool --judges span,ngram,em,rouge
      resetkit judge pool --judges summac --nli-model ./my-nli-model
      OPENAI_API_KEY=... resetkit judge pool --judges llm --max-usd 5
      resetkit judge pool --judges llm --judge-base-url http://127.0.0.1:8000/v1 --judge-model my-judge
      resetkit judge pool --judges llm --judge-base-url 'https://proxy.example/v1?api-key=...'
      resetkit judge pool --judges llm --dry-run
      resetkit judge pool@3fa2c1 --judges llm --batch --no-wait
      resetkit judge pool --judges span,em,rouge,summac --engine ray --ray-address auto
    """
    from resetkit.config import build, load_yaml, parse_overrides
    from resetkit.store import Store
    from resetkit.threads import apply_threads

    apply_threads(threads)  # torch threads of the SummaC NLI model

    from .judge import JudgeConfig, plan_judges, run_judges

    cli = {"nli_model": nli_model, "nli_entailment_idx": nli_entailment_idx,
           "nli_contradiction_idx": nli_contradiction_idx, "summac_contradiction": summac_contradiction,
           "nli_device": nli_device, "judge_model": judge_model, "judge_base_url": judge_base_url,
           "judge_prompt": judge_prompt, "judge_concurrency": judge_concurrency, "judge_prices": judge_prices,
           "max_usd": max_usd, "batch": batch}
    if no_wait:
        cli["batch_wait"] = False
    # flags only count when given, so a --config file can turn them on
    cli = {k: v for k, v in cli.items() if v is not None and v is not False}
    cfg = build(JudgeConfig, load_yaml(config_file) if config_file else None, parse_overrides(overrides), cli)
    store = Store(store_dir)
    names = [j.strip() for j in judges.split(",") if j.strip()]
    if dry_run:
        plan = plan_judges(store, pool, names, cfg, name=name)
        click.echo(json.dumps(plan, indent=2))
        return
    version = run_judges(store, pool, names, cfg, name=name, progress=not quiet, engine=engine,
                         ray_address=ray_address, workers=workers)
    stats = getattr(version, "run_stats", None) or version.manifest.get("judge_stats", {})
    click.echo(f"wrote {version.ref} ({version.num_rows().get('train', 0):,} rows) at {version.path}")
    for judge_name, s in stats.items():
        extra = ""
        if judge_name == "llm":
            extra = (f"; calls {s.get('calls', 0)}, cache hits {s.get('cache_hits', 0)}, failed "
                     f"{s.get('failed', 0)}, tokens {s.get('prompt_tokens', 0)}+"
                     f"{s.get('completion_tokens', 0)}, "
                     f"USD {s.get('usd', 0):.4f}")
            if s.get("malformed") or s.get("timeouts"):
                extra += f"; malformed replies {s.get('malformed', 0)}, timeouts {s.get('timeouts', 0)}"
                if s.get("lowest_concurrency", 0) < (cfg.judge_concurrency or 0):
                    extra += f" (concurrency lowered to {s['lowest_concurrency']})"
            if s.get("stopped_at_budget"):
                extra += " -- stopped at the --max-usd budget: rerun with a higher budget to finish"
            if s.get("batch_pending"):
                extra += f" -- batch {s['batch_pending']} pending: rerun to collect it"
        click.echo(f"  {judge_name}: {s['candidates_scored']} scored, "
                   f"{s['candidates_carried']} carried over{extra}")
    failed = [s["all_failed"] for s in stats.values() if s.get("all_failed")]
    if failed:  # a version of nothing but failed requests is no success
        from resetkit.errors import ResetkitError

        raise ResetkitError(f"{failed[0]} -- the failed rows are retried by the next run")
