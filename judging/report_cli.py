"""``resetkit report``: Table 4 (Markdown + CSV), the figures (PNG) and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from resetkit.cli_options import store_option


@click.command("report")
@click.argument("evals", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="report", show_default=True,
              help="Output folder (report.md, report.csv, *.png, report.html).")
@click.option("--selection", default=None, help="A selection dataset: browse its candidates in the HTML page.")
@click.option("--sample", type=int, default=20, show_default=True, help="Selection examples shown in the page.")
@click.option("--examples-per-source", type=int, default=3, show_default=True,
              help="Eval examples per dataset shown in the page.")
@click.option("--digits", type=int, default=2, show_default=True, help="Decimals in the tables.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the page's example samples.")
@click.option("--no-html", is_flag=True, help="Skip the HTML page.")
@store_option
def report(evals, out_dir, selection, sample, examples_per_source, digits, seed, no_html, store_dir):
    """Make the paper's Table 4, plots and an HTML page from eval datasets.

    EVALS are eval dataset references (NAME or NAME@VERSION), as `resetkit eval` writes them.
    Evals with the same label (default: the model) are runs of one configuration: their
    scores are shown as mean ± std.  Evals of different suites or judge versions are refused.

    \b
    Examples:
      resetkit report eval -o report/
      resetkit report eval-mtl-s1 eval-mtl-s2 eval-reset-s1 eval-reset-s2 -o report/
      resetkit report eval --selection selection --sample 30 -o report/
    """
    from resetkit.store import Store

    written, result = write_report(Store(store_dir), list(evals), out_dir, selection=selection, sample=sample,
                                   examples_per_source=examples_per_source, digits=digits, seed=seed,
                                   html=not no_html)
    from . import report as rp

    click.echo(rp.to_markdown(result, digits).split("## Task performance")[0].rstrip())
    click.echo("\nwrote " + ", ".join(str(p) for p in written.values()))


def write_report(store, evals: list[str], out_dir, *, selection: str | None = None, sample: int = 20,
                 examples_per_source: int = 3, digits: int = 2, seed: int = 0, html: bool = True):
    """Write report.md, report.csv, the PNG figures and report.html into ``out_dir``.

    Returns ({kind: path}, Report).  Everything is computed and checked before the first file
    is written; each file is written atomically.  ``make demo`` calls this directly.
    """
    from resetkit.store import write_text_atomic

    from . import plots
    from . import report as rp

    runs = [rp.load_eval(store, ref) for ref in evals]
    result = rp.build_report(runs)
    view = None
    if html and selection:
        from .report_html import selection_view

        view = selection_view(store, selection, sample, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.md", rp.to_markdown(result, digits))
    write_text_atomic(out / "report.csv", rp.to_csv(result))
    written = {"markdown": out / "report.md", "csv": out / "report.csv"}
    figures = plots.write_all(result, out)
    written.update(figures)
    if html:
        from .report_html import render_html

        write_text_atomic(out / "report.html", render_html(result, figures, selection=view, digits=digits,
                                                           per_source=examples_per_source, seed=seed))
        written["html"] = out / "report.html"
    return written, result
