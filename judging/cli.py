"""``resetkit judge``: score a candidate pool with the external judges (DESIGN.md §5)."""

from __future__ import annotations

import json

import click

from resetkit.cli_options import engine_options, store_option, threads_option

from .api import DEFAULT_JUDGES


# A few judge options also have a flag of their own; each is the same as its --set form (its help
# is the option's, listed at the end of --help).  Every other option: --set judge.NAME.FIELD=VALUE.
SHORTCUTS = (  # flag, judge, field, the value a bare flag sets (None: the flag takes a value)
    ("--nli-model", "summac", "model", None),
    ("--judge-model", "llm", "model", None),
    ("--judge-base-url", "llm", "base_url", None),
    ("--judge-prompt", "llm", "prompt", None),
    ("--judge-concurrency", "llm", "concurrency", None),
    ("--judge-prices", "llm", "prices", None),
    ("--max-usd", "llm", "max_usd", None),
    ("--batch", "llm", "batch", True),
    ("--no-wait", "llm", "batch_wait", False),
)


def _dest(flag: str) -> str:
    return "shortcut_" + flag.lstrip("-").replace("-", "_")


def shortcut_options(f):
    """The SHORTCUTS as click options (passed on as ``shortcut_*`` keyword arguments)."""
    for flag, judge_name, fname, const in reversed(SHORTCUTS):
        if const is None:
            f = click.option(flag, _dest(flag), default=None, metavar="VALUE",
                             help=f"Same as --set judge.{judge_name}.{fname}=VALUE.")(f)
        else:
            f = click.option(flag, _dest(flag), is_flag=True, default=False,
                             help=f"Same as --set judge.{judge_name}.{fname}={str(const).lower()}.")(f)
    return f


def shortcut_sets(values: dict) -> list[str]:
    """The shortcuts given, as --set items (so both forms are read by the same parser)."""
    out = []
    for flag, judge_name, fname, const in SHORTCUTS:
        value = values.get(_dest(flag))
        if const is None and value is not None:
            out.append(f"judge.{judge_name}.{fname}={value}")
        elif const is not None and value:
            out.append(f"judge.{judge_name}.{fname}={str(const).lower()}")
    return out


def judge_options_help(formatter) -> None:
    """Every registered judge, what it scores, and its options with their help and defaults."""
    from resetkit.config import describe

    from .api import JUDGES

    with formatter.section("Judges and their options (--set judge.NAME.FIELD=VALUE, or in --config)"):
        for name in JUDGES.names():
            cls = JUDGES.get(name)
            formatter.write_text(f"{name}: {', '.join(cls.metrics)} on {', '.join(cls.tasks)}")
            rows = [(f"judge.{name}.{fname}", f"{help} [default: {default}]")
                    for fname, default, help in describe(cls.Options)]
            if rows:
                with formatter.indentation():
                    formatter.write_dl(rows)


class JudgeCommand(click.Command):
    """``resetkit judge``, whose --help ends with the judges' options, read from the registry."""

    def format_epilog(self, ctx, formatter):
        super().format_epilog(ctx, formatter)
        judge_options_help(formatter)


@click.command(cls=JudgeCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("pool", default="pool")
@click.option("--judges", default=",".join(DEFAULT_JUDGES), show_default=True,
              help="Comma-separated judges (every registered judge is listed below).")
@shortcut_options
@click.option("--dry-run", is_flag=True,
              help="Print what would be judged (calls, tokens, USD); write nothing.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of judge options: {judge: {NAME: {FIELD: VALUE}}} (the command line wins).")
@click.option("--set", "overrides", multiple=True, metavar="judge.NAME.FIELD=VALUE",
              help="Set a judge's option, e.g. --set judge.summac.model=./nli (repeatable).")
@engine_options("Score here, or on Ray actors holding the models (the LLM judge stays here; docs/ray.md).",
                "ray: judge actors (default: as many as fit).")
@click.option("--name", default="scores", show_default=True, help="Name of the scores dataset.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@threads_option
@store_option
def judge(pool, judges, dry_run, config_file, overrides, engine, ray_address, workers, name, quiet,
          threads, store_dir, **shortcuts):
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
      resetkit judge pool --judges summac --set judge.summac.model=./nli --set judge.summac.device=cpu
      resetkit judge pool --judges rouge,llm --config judges.yaml
      OPENAI_API_KEY=... resetkit judge pool --judges llm --max-usd 5
      resetkit judge pool --judges llm --judge-base-url http://127.0.0.1:8000/v1 --judge-model my-judge
      resetkit judge pool --judges llm --judge-base-url 'https://proxy.example/v1?api-key=...'
      resetkit judge pool --judges llm --dry-run
      resetkit judge pool@3fa2c1 --judges llm --batch --no-wait
      resetkit judge pool --judges span,em,rouge,summac --engine ray --ray-address auto
    """
    from resetkit.store import Store
    from resetkit.threads import apply_threads

    apply_threads(threads)  # torch threads of the SummaC NLI model

    from .judge import plan_judges, run_judges

    cfg = judge_config(config_file, [*shortcut_sets(shortcuts), *overrides])
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
                if s.get("lowest_concurrency", 0) < cfg.options("llm").concurrency:
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


def judge_config(config_file: str | None, sets):
    """The JudgeConfig of a --config YAML file overridden by ``judge.NAME.FIELD=VALUE`` items
    (field by field: a --set of one option keeps the file's others)."""
    from resetkit.config import build, load_yaml, parse_sets
    from resetkit.errors import ResetkitError

    from .api import JudgeConfig

    base = load_yaml(config_file) if config_file else {}
    given = base.get("judge") or {}
    if not isinstance(given, dict) or not all(isinstance(v, dict) or v is None for v in given.values()):
        raise ResetkitError(f"{config_file}: 'judge' must map judge names to {{FIELD: VALUE}} mappings, "
                            "e.g. judge: {summac: {model: ./nli}}")
    options = {name: dict(values or {}) for name, values in given.items()}
    for name, values in parse_sets(sets, ("judge",)).get("judge", {}).items():
        options.setdefault(name, {}).update(values)
    return build(JudgeConfig, base, {"judge": options})
