"""The ``resetkit`` command line.

Subcommands live in the package that owns them and are imported only when run, so
``resetkit --help`` starts fast (no torch/transformers/duckdb import on start-up).
"""

from __future__ import annotations

import click

from .registry import suggest

# name -> "module:attribute" of a click command; one line per command.
COMMANDS = {
    "build": "builders.cli:build",
    "sources": "builders.cli:sources",
    "ls": "resetkit.cli_store:ls",
    "pool": "builders.pool_cli:pool",
    "judge": "judging.cli:judge",
    "select": "judging.select_cli:select",
    "sql": "resetkit.sql:sql_command",
    "card": "resetkit.cli_store:card",
    "publish": "resetkit.hub:publish_command",
    "train": "training.cli:train",
    "eval": "pipeline.evaluate:eval_command",
    "report": "judging.report_cli:report",
}

SHORT_HELP = {
    "build": "Build a corpus (if-train, if-eval, cd-train, cd-eval, mtl, reset-seed).",
    "sources": "List upstream sources, their Hub ids and the paper's rules.",
    "ls": "List datasets, versions and row counts per split.",
    "pool": "Sample candidate answers per example with the paper's decoding grid.",
    "judge": "Score a candidate pool with the external judges.",
    "select": "Keep the top-rated candidate per example (DuckDB SQL).",
    "sql": "Run a read-only SQL query over the store.",
    "card": "Render a dataset version's card again.",
    "publish": "Upload a dataset version to the Hugging Face Hub.",
    "train": "Fine-tune with a recipe (cd, if, mtl, reset, ...) under DeepSpeed.",
    "eval": "Generate greedily on the evaluation suite and judge it.",
    "report": "Table 4, plots and an HTML page from eval datasets.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        import importlib

        module, _, attr = COMMANDS[name].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"

            @click.command(name=name, help=SHORT_HELP.get(name, ""),
                           context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args):
                raise click.ClickException(f"'resetkit {name}' is not available ({reason})")
            return unavailable

    def format_commands(self, ctx, formatter):
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        """An OSError no command caught (a full disk, a read-only or unreadable path) is one
        clear line naming the path, not a traceback."""
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):  # `resetkit ... | head`: click handles it
                raise
            from .errors import ResetkitError, os_error_message

            raise ResetkitError(os_error_message(exc)) from None

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and name not in COMMANDS and not name.startswith("-"):
            raise click.UsageError(f"no such command {name!r}.{suggest(name, COMMANDS)}", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resetkit")
def main():
    """resetkit: RESET datasets (Rejection Sampling for Continued Self-instruction Tuning).

    \b
    The pipeline, each step a versioned dataset in the store (./store or --store):
      resetkit build if-train --source dolly=builders/samples/dolly.jsonl ...
      resetkit build reset-seed
      resetkit pool reset-seed --model ./my-mtl-model --backend transformers
      resetkit judge pool --judges span,em,rouge,summac,llm
      resetkit select pool
      resetkit train reset --model ./my-mtl-model --data selection
      resetkit eval --model ./outputs/reset && resetkit report eval
    """
    from .sql import install_commit_hook

    # every command that commits keeps STORE/catalog.duckdb current (docs/select-sql-publish.md)
    install_commit_hook()


if __name__ == "__main__":  # pragma: no cover
    main()
