"""Store commands: ``resetkit ls`` and ``resetkit card``."""

from __future__ import annotations

import click

from .cli_options import store_option
from .store import Store


@click.command()
@click.argument("names", nargs=-1)
@store_option
@click.option("--all", "show_all", is_flag=True, help="Show every version, not only the newest.")
def ls(names, store_dir, show_all):
    """List datasets, their versions and row counts per split.

    \b
    Examples:
      resetkit ls
      resetkit ls if-train cd-train --all
    """
    from rich.console import Console
    from rich.table import Table

    store = Store(store_dir)
    names = names or store.names()
    if not names:
        click.echo(f"store {store.root} is empty")
        return
    table = Table(title=f"store: {store.root}")
    for col in ("dataset", "version", "newest", "built", "rows per split"):
        table.add_column(col)
    for name in names:
        latest = store.resolve(name)
        versions = store.versions(name) if show_all else [latest]
        for v in versions:
            rows = ", ".join(f"{s}={n:,}" for s, n in v.num_rows().items())
            table.add_row(name, v.version, "*" if v.version == latest.version else "",
                          v.manifest.get("created_at", "")[:19], rows)
    Console(width=200).print(table)


@click.command()
@click.argument("dataset")
@store_option
@click.option("--print", "to_stdout", is_flag=True, help="Print the card instead of writing README.md.")
def card(dataset, store_dir, to_stdout):
    """Render a dataset version's card (README.md) again from its manifest.

    \b
    Examples:
      resetkit card if-train
      resetkit card selection@3fa2c1 --print
    """
    from datacards.render import rerender

    from .store import write_text_atomic

    version = Store(store_dir).resolve(dataset)
    text = rerender(version.path)
    if to_stdout:
        click.echo(text)
    else:
        write_text_atomic(version.path / "README.md", text)
        click.echo(f"wrote {version.path / 'README.md'}")
