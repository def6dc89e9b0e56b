"""User-facing errors: raised anywhere, shown by the CLI as one clean message (no traceback)."""

from __future__ import annotations

import errno

import click


class ResetkitError(click.ClickException):
    """An error the user can fix (bad input, unknown name, missing file...)."""

    exit_code = 2

    def __init__(self, message: str):
        from .secrets import redact_text

        super().__init__(redact_text(message))  # a key echoed by a server or in a URL is never shown


class BadInputError(ResetkitError):
    """Malformed input data; the message names the file, the line/row and the column."""

    def __init__(self, path, message: str, *, line: int | None = None, row: int | None = None,
                 column: str | None = None):
        where = [str(path)]
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        self.path, self.line, self.row, self.column = path, line, row, column
        super().__init__(f"{', '.join(where)}: {message}")


class MissingExtraError(ResetkitError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what}: pip install 'resetkit[{extra}]' (or pip install {package})")


def require(module: str, extra: str, purpose: str = "", package: str | None = None):
    """Import an optional module or raise a one-line MissingExtraError naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(package or module.split(".")[0], extra, purpose) from exc


def os_error_message(exc: OSError) -> str:
    """One line for an OSError no stage turned into a ResetkitError: what, and which path."""
    paths = [str(p) for p in (getattr(exc, "filename", None), getattr(exc, "filename2", None)) if p]
    where = f"{' -> '.join(paths)}: " if paths else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{where}disk full ({reason}); what was being written was not committed. Free some space "
                "and run the same command again (finished work is kept)")
    if exc.errno == errno.EROFS:
        return f"{where}{reason}: cannot write there (for the store, pass a writable --store DIR)"
    return f"{where}{reason}"
