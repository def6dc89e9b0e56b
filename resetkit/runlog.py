"""Quiet runs: the console shows resetkit's own lines and one progress bar; everything else
(library warnings and logs, C-level notices, JIT build output) goes to a log file the run names.

    with runlog.capture(out_dir / "resetkit-train.log") as con:
        con.echo("stage 1/1 ...")                  # console and log
        bar = con.progress(total=100, desc="train")  # the run's one progress bar, on the console
        ...                                        # anything printed or logged by libraries: log only

How: for the duration of the block, file descriptors 1 and 2 point at the log file, so output
from C extensions (OpenMP notices), subprocesses (DeepSpeed's ninja builds) and Python code
(``print``, logging handlers, tqdm bars of libraries) all lands there.  The console is a
duplicate of the original stdout/stderr taken before the switch.  Python warnings are written
to the log; a warning a user can act on is also shown once on the console, while the known
noise (deprecation notices, accelerator detection, OpenMP/thread notices, DeepSpeed info) is
never shown (:data:`NOISE`).  An exception leaving the block is written to the log and, after
the console is restored, reaches the user as usual; the log path is printed with it.

``RESETKIT_VERBOSE=1`` turns the capture off (everything on the terminal, as without resetkit);
``RESETKIT_PROGRESS=0`` hides the progress bar.  Nested blocks reuse the outer capture.
Code that draws a bar outside a block can pass ``file=runlog.progress_file()``: the console
during a capture, stderr otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import logging
import os
import re
import sys
import warnings
from pathlib import Path

from .secrets import redact_text

# Python warnings never shown on the console (they are still in the log): categories that only
# the library's authors can act on, and messages about the environment a user did not ask about.
NOISE_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning,
                    ResourceWarning)
NOISE = re.compile("|".join([
    r"deprecated", r"will be removed", r"OMP_NUM_THREADS", r"MKL_NUM_THREADS", r"omp_set_nested",
    r"[Ss]etting accelerator to", r"unable to detect it", r"Gradient accumulation steps mismatch",
    r"TypedStorage is deprecated", r"torch\.distributed", r"process group", r"NCCL", r"gloo",
    r"pkg_resources", r"The attention mask", r"pad token", r"generation flags",
    r"`use_cache=True` is incompatible", r"loss_type=None",
]))

_current: Console | None = None


def verbose() -> bool:
    return os.environ.get("RESETKIT_VERBOSE", "0") not in ("", "0", "false", "False")


def progress_enabled() -> bool:
    return os.environ.get("RESETKIT_PROGRESS", "1") not in ("0", "false", "False")


def is_noise(message: str, category: type | None = None) -> bool:
    """A warning the user cannot act on (kept in the log, not shown)."""
    if category is not None and issubclass(category, NOISE_CATEGORIES):
        return True
    return bool(NOISE.search(message))


class Console:
    """Where a run's own lines go: the terminal (and the log) during a capture."""

    def __init__(self, out, err, log=None, log_path: Path | None = None, owned=()):
        self.out, self.err, self.log, self.log_path = out, err, log, log_path
        self._owned = list(owned)
        self._shown: set[str] = set()
        self.warnings_logged = 0

    def echo(self, message: str, *, err: bool = False) -> None:
        """One line on the console, and in the log with a timestamp."""
        stream = self.err if err else self.out
        stream.write(message + "\n")
        stream.flush()
        self.to_log(message)

    def to_log(self, message: str) -> None:
        if self.log is not None:
            stamp = _dt.datetime.now().strftime("%H:%M:%S")
            self.log.write(f"[{stamp}] {message}\n")
            self.log.flush()

    def warn_once(self, message: str) -> None:
        """A warning worth a user's attention: once on the console (stderr)."""
        first = message.strip().splitlines()[0] if message.strip() else message
        if first in self._shown:
            return
        self._shown.add(first)
        self.err.write(f"warning: {first}\n")
        self.err.flush()

    def progress(self, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False,
                 **kwargs):
        """The run's progress bar, drawn on the console (tqdm)."""
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=self.err, dynamic_ncols=True,
                    disable=disable or not progress_enabled(), **kwargs)

    def close(self) -> None:
        for f in self._owned:
            with contextlib.suppress(OSError, ValueError):
                f.close()


def current() -> Console:
    """The active capture's console, or one writing to the process's stdout/stderr."""
    return _current if _current is not None else Console(sys.stdout, sys.stderr)


def progress_file():
    """The stream progress bars should draw on: the console during a capture, else stderr."""
    return _current.err if _current is not None else sys.stderr


def _console_stream(stream, fd: int, owned: list):
    """A stream to the terminal that survives pointing ``fd`` at the log.

    When ``stream`` writes to ``fd`` itself (a normal process), its descriptor is duplicated
    first; otherwise (click's test runner, pytest capture) ``stream`` is already somewhere else.
    """
    try:
        on_fd = stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        on_fd = False
    if not on_fd:
        return stream
    dup = os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                    errors="replace")
    owned.append(dup)
    return dup


class _RedactingFormatter(logging.Formatter):
    """Library log records (httpx logs every request URL, query string included) with every
    known secret and credential-like URL parameter masked before they reach the log file."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def _open_log(log_path: Path, header: str):
    """The log file, opened for appending with the run's header line; None where it cannot be
    written (a full disk, a read-only store): the run then goes on with its output on the
    terminal, and the work itself reports what it cannot write."""
    log = None
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        log.write(f"\n===== {stamp} {header or ' '.join(sys.argv)} (pid {os.getpid()})\n")
        log.flush()
        return log
    except OSError:
        with contextlib.suppress(OSError):
            if log is not None:
                log.close()
            if log_path.is_file() and log_path.stat().st_size == 0:
                log_path.unlink()
        return None


@contextlib.contextmanager
def capture(log_path: str | Path, *, header: str = "", show_progress: bool = True):
    """Send everything but the run's own lines to ``log_path`` (appended) for the block."""
    global _current
    if _current is not None:        # nested: the outer run's log already collects everything
        yield _current
        return
    log_path = Path(log_path)
    log = None if verbose() else _open_log(log_path, header)
    if log is None:  # RESETKIT_VERBOSE, or no log where it should go: everything on the terminal
        con = Console(sys.stdout, sys.stderr)
        _current = con
        try:
            yield con
        finally:
            _current = None
        return
    owned: list = []
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    out = _console_stream(sys.stdout, 1, owned)
    err = _console_stream(sys.stderr, 2, owned)
    con = Console(out, err, log, log_path, owned)
    saved_fds = {}
    for fd in (1, 2):
        try:
            saved_fds[fd] = os.dup(fd)
            os.dup2(log.fileno(), fd)
        except OSError:
            saved_fds.pop(fd, None)
    saved_streams = (sys.stdout, sys.stderr)
    # Python-level writers go to the (redirected) descriptors, never to a stream this block closes
    sys.stdout, sys.stderr = sys.__stdout__ or sys.stdout, sys.__stderr__ or sys.stderr
    saved_showwarning = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = redact_text(warnings.formatwarning(message, category, filename, lineno, line))
        log.write(text if text.endswith("\n") else text + "\n")
        log.flush()
        con.warnings_logged += 1
        if not is_noise(str(message), category):
            con.warn_once(redact_text(f"{category.__name__}: {message}"))

    warnings.showwarning = showwarning
    handler = logging.StreamHandler(log)
    handler.setFormatter(_RedactingFormatter("[%(asctime)s %(levelname)s %(name)s] %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    _current = con
    try:
        yield con
    except BaseException as exc:
        import traceback

        log.write(redact_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
        if not isinstance(exc, (SystemExit, KeyboardInterrupt)) and hasattr(exc, "add_note"):
            exc.add_note(f"full log: {log_path}")
        raise
    finally:
        _current = None
        root.removeHandler(handler)
        root.setLevel(old_level)
        warnings.showwarning = saved_showwarning
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        con.close()
        log.close()


def store_log_path(store_root: str | Path, command: str, name: str) -> Path:
    """Where a command that writes store datasets logs: ``STORE/.logs/COMMAND-NAME-<UTC time>.log``
    (a hidden folder: never taken for a dataset)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(store_root) / ".logs" / f"{command}-{name}-{stamp}.log"


def log_file_note(con: Console) -> str:
    """``details: PATH`` for the end of a run (empty when nothing was captured)."""
    return f"full log: {con.log_path}" if con.log_path is not None else ""
