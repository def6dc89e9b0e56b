"""Models as people have them: a local folder, a Hub id, or a ``.gguf`` file.

``resolve_model(spec)`` turns a ``--model`` value into a ``ModelRef`` whose ``path`` every
loader takes (``from_pretrained``, DeepSpeed training, ``vllm.LLM``, ``vllm serve``):

- a folder with ``config.json``: used as it is (absolute path);
- a ``.gguf`` file (llama.cpp's format; recognised by its magic bytes, whatever its name):
  converted once with transformers' own GGUF loader (dequantised, needs the ``gguf``
  package) into a normal model folder under the model cache, keyed by the file's content
  hash; later runs find the folder and convert nothing;
- anything else that looks like ``org/name``: a Hub id, passed through.

``model_fingerprint(ref)`` is the model's identity for manifests and version ids: for a local
folder (a converted ``.gguf`` included) a hash over the files loading reads (size and digest,
never their path), so ``./m``, ``/abs/m`` and a copy of it are the same model; for a Hub id its
commit.

The cache: ``$RESETKIT_MODEL_CACHE``, else ``$XDG_CACHE_HOME/resetkit/models``, else
``~/.cache/resetkit/models``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from resetkit.errors import ResetkitError

GGUF_MAGIC = b"GGUF"
CONVERTER_VERSION = "1"   # part of the cache key: a changed conversion never reuses old folders

FULL_HASH_LIMIT = 64 << 20   # files up to 64 MiB are hashed whole
SAMPLE_BLOCKS, SAMPLE_SIZE = 16, 1 << 20

NOT_MODEL_FILES = {"training_args.bin", "trainer_state.json", "all_results.json", "train_results.json",
                   "eval_results.json", "resetkit-source.json", "training_results.json"}


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A resolved ``--model``.

    ``spec``: as given; ``path``: what loaders take (absolute folder, or the Hub id);
    ``local``: the folder (None for a Hub id); ``gguf``: the source ``.gguf`` file, if any.
    """

    spec: str
    path: str
    local: Path | None = None
    gguf: Path | None = None
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.local is not None

    @property
    def display(self) -> str:
        """What to show a user and write in rows: the ``.gguf`` file, the folder or the Hub id."""
        return str(self.gguf or self.local or self.path)


# -- detection ---------------------------------------------------------------------------

def is_gguf(path) -> bool:
    """True for a file that starts with the GGUF magic bytes."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _looks_like_path(spec: str) -> bool:
    # Hub ids are ``name`` or ``org/name``; anything else that names the filesystem is a path
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or spec.lower().endswith(".gguf")


def not_a_model_folder(spec: str, path: Path) -> str:
    """The one-line error for ``path`` that is not a model folder, with the hint that fits."""
    if path.is_file():
        if is_gguf(path):
            return (f"model path {spec} is a GGUF file, not a model folder: pass it as --model (resetkit "
                    f"converts it once, see docs/pool.md), or convert it with `python -m resetkit.models "
                    f"{spec}` and pass the folder it prints")
        if path.suffix.lower() == ".gguf":
            return (f"model path {spec} is not a valid GGUF file (it does not start with the GGUF magic "
                    f"bytes): check the download")
        return (f"model path {spec} is a file, not a model folder (expected a folder with config.json, "
                f"a .gguf file or a Hub id)")
    ggufs = sorted(p.name for p in path.glob("*.gguf")) if path.is_dir() else []
    if ggufs:
        return (f"model path {spec} is not a model folder (no config.json in it); it holds GGUF file(s) "
                f"{', '.join(ggufs[:3])}: pass the file itself, e.g. --model {path / ggufs[0]}")
    return f"model path {spec} is not a model folder (no config.json in it)"


def resolve_model(spec: str, *, revision: str | None = None, convert: bool = True,
                  cache_dir=None, progress: bool = True) -> ModelRef:
    """Resolve a ``--model`` value (folder, ``.gguf`` file or Hub id); ResetkitError if it cannot be.

    With ``convert=False`` a ``.gguf`` file resolves only if its converted folder is cached
    already (otherwise a ResetkitError says so)."""
    if not spec or not str(spec).strip():
        raise ResetkitError("no model given (--model PATH_OR_ID)")
    spec = str(spec)
    p = Path(os.path.expanduser(spec))
    if p.exists():
        try:
            p = p.resolve()
            if p.is_file() and is_gguf(p):
                folder = convert_gguf(p, cache_dir=cache_dir, progress=progress, convert=convert)
                return ModelRef(spec, str(folder), local=folder, gguf=p, revision=None)
            if not p.is_dir() or not (p / "config.json").is_file():
                raise ResetkitError(not_a_model_folder(spec, p))
        except PermissionError as exc:
            raise ResetkitError(f"model path {spec}: cannot read it ({exc.strerror})") from exc
        return ModelRef(spec, str(p), local=p, revision=None)
    if _looks_like_path(spec):
        raise ResetkitError(f"model path not found: {spec}")
    return ModelRef(spec, spec, revision=revision)


# -- GGUF conversion ---------------------------------------------------------------------

def model_cache_dir(cache_dir=None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("RESETKIT_MODEL_CACHE"):
        return Path(os.environ["RESETKIT_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "resetkit" / "models"


def file_sha256(path, cache_dir=None) -> str:
    """Full sha256 of a file, remembered per (path, size, mtime) under the cache so that a large
    file is read once, not on every run."""
    path = Path(path)
    st = path.stat()
    stamp = hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = model_cache_dir(cache_dir) / "sha256" / stamp
    try:
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(digest)
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def convert_gguf(path, *, cache_dir=None, progress: bool = True, convert: bool = True) -> Path:
    """The normal model folder for the ``.gguf`` file ``path`` (converted on first use).

    The folder is ``<cache>/gguf-<sha256[:24]>-<stem>``, written to a temp folder and renamed
    into place, under a lock, so concurrent runs convert once and a killed conversion leaves
    nothing half-written.
    """
    import fcntl

    path = Path(path).resolve()
    digest = file_sha256(path, cache_dir)
    root = model_cache_dir(cache_dir)
    key = hashlib.sha256(f"{digest}:{CONVERTER_VERSION}".encode()).hexdigest()[:24]
    target = root / f"gguf-{key}-{_safe_stem(path)}"
    if (target / "config.json").is_file():
        return target
    if not convert:
        raise ResetkitError(f"{path}: GGUF file not converted yet (run with conversion allowed, or "
                            f"`python -m resetkit.models {path}`)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResetkitError(f"cannot create the model cache {root} ({exc.strerror}); set "
                            f"$RESETKIT_MODEL_CACHE to a writable folder") from exc
    with open(root / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():  # another process converted it meanwhile
            return target
        tmp = root / f".tmp-{target.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if progress:
                print(f"converting {path.name} to a model folder (once; cached in {target})", file=sys.stderr)
            _convert(path, tmp)
            (tmp / "resetkit-source.json").write_text(json.dumps(
                {"gguf": path.name, "sha256": digest, "size": path.stat().st_size,
                 "converter_version": CONVERTER_VERSION}, indent=1) + "\n")
            os.replace(tmp, target)
        except ResetkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - one clear line, whatever the loader raised
            raise ResetkitError(f"cannot convert GGUF file {path}: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _safe_stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem)
    return stem[:80] or "model"


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` with transformers' GGUF loader and save a plain model folder.

    transformers refuses to ``save_pretrained`` a GGUF-loaded model ("quantized with gguf and
    not serializable"), so the dequantised weights go into a fresh model of the same config
    class, without the quantization config, which saves normally."""
    from resetkit.errors import require

    require("gguf", "models", "loading .gguf models")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    config.dtype = torch.float32
    plain = type(loaded)(config)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    tied = set(getattr(plain, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied and not (config.tie_word_embeddings and "lm_head" in k)]
    if missing or unexpected:
        raise ResetkitError(f"cannot convert GGUF file {gguf}: weights do not match {type(plain).__name__} "
                            f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})")
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    if tok.pad_token_id is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(str(out))
    tok.save_pretrained(str(out))


# -- identity ----------------------------------------------------------------------------

def file_digest(path) -> str:
    """sha256 of a file; above FULL_HASH_LIMIT, of its size and 16 evenly spaced 1 MiB blocks.

    Why sampled: hashing 14 GB of weights on every run costs ~10-30 s, while two checkpoints
    of one architecture always differ in every weight block, so sampled blocks still tell
    them apart (sizes alone would not: a fine-tune has exactly the same file sizes).
    """
    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
            return h.hexdigest()
        h.update(str(size).encode())
        step = (size - SAMPLE_SIZE) // (SAMPLE_BLOCKS - 1)
        for i in range(SAMPLE_BLOCKS):
            fh.seek(i * step)
            h.update(fh.read(SAMPLE_SIZE))
    return "sampled:" + h.hexdigest()


def local_model_fingerprint(path) -> dict:
    """Fingerprint of a local model folder: config, tokenizer and weight files (name, size, digest).

    Returns ``{"revision": "local-<hash>", "files": [{path, size, sha256}, ...]}``; the
    revision changes whenever any of those files changes, and never with the folder's own
    path (file names are relative to it).
    """
    from resetkit.store import short_hash

    path = Path(path)
    files = []
    # only what loading the model reads: top-level files, not checkpoint-*/ or logs of a training
    # run in the same folder, nor its card, plan or trainer bookkeeping
    for p in sorted(path.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.name not in NOT_MODEL_FILES \
                and p.suffix not in (".md", ".yaml", ".yml", ".log"):
            files.append({"path": str(p.relative_to(path)), "size": p.stat().st_size,
                          "sha256": file_digest(p)})
    return {"revision": "local-" + short_hash(files, 16), "files": files}


def model_fingerprint(ref: ModelRef, commit: str | None = None) -> dict:
    """``{"revision": ..., "files": [...]?, "gguf": {...}?}``: the model's content identity.

    Local folders (converted GGUF files included) are fingerprinted by content; a Hub model
    by ``commit`` (from its config), else the requested revision, else "main"."""
    if ref.local is None:
        return {"revision": commit or ref.revision or "main"}
    fp = local_model_fingerprint(ref.local)
    if ref.gguf is not None:
        src = ref.local / "resetkit-source.json"
        if src.is_file():
            fp["gguf"] = json.loads(src.read_text())
    return fp


def model_key(ref: ModelRef, fingerprint: dict) -> str:
    """What identifies the model in version ids and candidate ids: the Hub id for Hub models;
    for local ones only their content (so no path spelling or location changes an id)."""
    return ref.path if ref.local is None else fingerprint["revision"]


def main(argv=None) -> int:
    """``python -m resetkit.models FILE.gguf``: convert (once) and print the model folder."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m resetkit.models",
                                 description="Resolve a --model value; a .gguf file is converted once "
                                             "to a model folder (printed).")
    ap.add_argument("model")
    args = ap.parse_args(argv)
    try:
        print(resolve_model(args.model).path)
    except ResetkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
