"""The click options several commands share, defined once.

- ``store_option``       ``--store DIR`` (passed as ``store_dir``);
- ``threads_option``     ``--threads N`` (passed as ``threads``; resetkit.threads applies it);
- ``RegistryChoice(registry)`` a click type: one of a plugin registry's names, read when used;
- ``engine_options(...)`` ``--engine local|ray``, ``--ray-address`` and, for stages with
  model-holding actors, ``--workers`` (passed as ``engine``, ``ray_address``, ``workers``).

Commands live in the package that owns them (resetkit/cli.py COMMANDS) and import these from here.
"""

from __future__ import annotations

import click

from .errors import ResetkitError
from .engine import ENGINES

THREADS_HELP = ("CPU threads for torch (default: the CPUs this process may use, fewer when the load average "
                "says the machine is busy; or $RESETKIT_THREADS). See docs/pool.md, 'Threads'.")

store_option = click.option("--store", "store_dir", type=click.Path(file_okay=False), default=None,
                            help="Store directory (default: $RESETKIT_STORE or ./store).")

threads_option = click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
                              help=THREADS_HELP)


def engine_options(engine_help: str, workers_help: str | None = None):
    """``--engine``, ``--ray-address`` and (when ``workers_help`` is given) ``--workers``, in that
    order in ``--help``; ``engine_help`` says what runs where for this command (docs/ray.md)."""
    options = [
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help=engine_help),
        click.option("--ray-address", default=None,
                     help="ray: cluster address (auto, HOST:PORT, ray://HOST:10001); default $RAY_ADDRESS, "
                          "else a local Ray instance."),
    ]
    if workers_help:
        options.append(click.option("--workers", type=int, default=None, help=workers_help))

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


class RegistryChoice(click.ParamType):
    """A choice among a registry's names, read when used (a backend registered at run time is
    a choice too); unknown names get the registry's did-you-mean error."""

    name = "choice"

    def __init__(self, registry):
        self.registry = registry

    def get_metavar(self, param, ctx=None) -> str:
        return "[" + "|".join(self.registry.names()) + "]"

    def convert(self, value, param, ctx):
        try:
            return self.registry.check(value)
        except ResetkitError as exc:
            self.fail(exc.message, param, ctx)
