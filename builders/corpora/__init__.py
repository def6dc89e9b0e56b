"""Build the paper's corpora from upstream sources into the store.

``build_corpus(store, corpus, sources, **options) -> DatasetVersion`` is the one entry point
(the CLI and the demo call it).  Corpora:

- ``if-train``: Dolly, OASST-1, ShareGPT, Self-Instruct (train + validation); unique
  examples across sources (first one wins, in that order); a seeded share of train examples
  (``dev_fraction``) is held out as validation, with OASST-1's own validation split.
- ``if-eval``: Alpaca, Vicuna-80, Koala-180 (split ``test``); only instructions unseen in
  ``if-train`` (the newest one in the store, or ``--from if-train@VERSION``).
- ``cd-train``: NQ, MS MARCO, CNN/DailyMail (train / validation / test).
- ``cd-eval``: BioASQ, SearchQA, WikiSum (split ``test``); when a ``cd-train`` is in the
  store, questions / articles seen in it are dropped.
- ``mtl`` and ``reset-seed`` are mixtures of built corpora: see ``builders.mixture``.

The modules: ``config`` (BuildConfig, which sources feed which corpus), ``rules`` (the
corpus rules, once for the row and the columnar path), ``inputs`` (reading a source),
``writer`` (Parquet row groups), ``card`` (the data card), ``build`` (a source corpus).
"""

from __future__ import annotations

from resetkit.errors import ResetkitError
from resetkit.store import DatasetVersion, Store

from .build import build_source_corpus
from .config import CORPORA, SOURCE_CORPORA, BuildConfig, corpus_config, source_set
from .inputs import OpenSource

__all__ = ["CORPORA", "SOURCE_CORPORA", "BuildConfig", "OpenSource", "build_all_samples", "build_corpus",
           "build_source_corpus", "corpus_config", "sample_sources", "source_set"]


def build_corpus(store: Store | str, corpus: str, sources: dict[str, str] | None = None, *,
                 name: str | None = None, from_refs: list[str] | tuple = (), progress: bool = False,
                 only: list[str] | tuple | None = None, **options) -> DatasetVersion:
    """Build ``corpus`` into ``store``; ``sources`` maps source name -> local path or Hub id
    (missing sources load from their default Hub id).  ``only`` builds the corpus from those
    of its sources alone (the manifest, card and version id then name only them).  Options
    are ``BuildConfig`` fields.
    """
    from resetkit.config import build as build_config

    store = store if isinstance(store, Store) else Store(store)
    CORPORA.check(corpus)
    cfg = build_config(BuildConfig, {k: v for k, v in options.items() if v is not None})
    cfg.check()
    fn = CORPORA.get(corpus)
    if only is not None:
        if corpus not in SOURCE_CORPORA:
            raise ResetkitError(f"--only picks the sources of if-train, if-eval, cd-train or cd-eval; {corpus} is "
                                f"built from other corpora (use --from)")
        return fn(store, corpus, dict(sources or {}), cfg, name=name or corpus, from_refs=list(from_refs),
                  progress=progress, only=list(only))
    return fn(store, corpus, dict(sources or {}), cfg, name=name or corpus, from_refs=list(from_refs),
              progress=progress)


def sample_sources(corpus: str) -> dict[str, str]:
    """``--source`` specs pointing at builders/samples/ for one source corpus."""
    from ..samples.make_samples import HERE, SAMPLE_PATHS

    return {n: str(HERE / SAMPLE_PATHS[n]) for n in source_set(corpus)}


def build_all_samples(store: Store | str, template: str = "alpaca", **options) -> dict[str, DatasetVersion]:
    """Build every corpus from the committed sample files (offline); returns corpus -> version.

    Order matters: if-eval checks against if-train, cd-eval against cd-train, and the
    mixtures read both training corpora.
    """
    store = store if isinstance(store, Store) else Store(store)
    out: dict[str, DatasetVersion] = {}
    for corpus in ("if-train", "cd-train", "if-eval", "cd-eval"):
        out[corpus] = build_corpus(store, corpus, sample_sources(corpus), template=template, **options)
    refs = [out["if-train"].ref, out["cd-train"].ref]
    for corpus in ("mtl", "reset-seed"):
        out[corpus] = build_corpus(store, corpus, {}, from_refs=refs, **options)
    return out
