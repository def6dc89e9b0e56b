"""What a corpus build is configured with: ``BuildConfig``, which sources feed which corpus,
and which config keys identify each corpus (only those go into its version id)."""

from __future__ import annotations

import dataclasses

from resetkit.config import field
from resetkit.errors import ResetkitError
from resetkit.registry import Registry

from .. import sources as source_registry
from .. import templates

BUILDER = "builders.corpora"      # the manifests' builder name (part of every version id)
BUILDER_VERSION = "1"

# corpora built from upstream sources; a source feeds the one its ``role`` names
SOURCE_CORPORA = ("if-train", "if-eval", "cd-train", "cd-eval")
CORPORA = Registry("corpus", {
    **{name: "builders.corpora.build:build_source_corpus" for name in SOURCE_CORPORA},
    "mtl": "builders.mixture:build_mtl",
    "reset-seed": "builders.mixture:build_reset_seed",
})
PRETTY = {"if-train": "RESET instruction-following training set",
          "if-eval": "RESET instruction-following evaluation set",
          "cd-train": "RESET context-dependent training set",
          "cd-eval": "RESET context-dependent evaluation set",
          "mtl": "RESET multi-task mixture", "reset-seed": "RESET seed subset"}
TRAIN_OF = {"if-eval": "if-train", "cd-eval": "cd-train"}


def source_set(corpus: str) -> list[str]:
    """The sources of ``corpus`` in registry order (``builders.sources.NAMES``), which is also
    the if-train de-duplication order (the first source wins)."""
    return [n for n in source_registry.NAMES if source_registry.get(n).role == corpus]


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    template: str = field("alpaca", help="prompt template: alpaca | vicuna | vicuna-paper")
    seed: int = field(0, help="seed for the validation hold-out and the mixtures")
    limit: int | None = field(None, help="keep at most N input rows per source and split (quick builds)")
    on_bad_rows: str = field("error", help="malformed rows: error (stop, naming file/line/column) | skip (count)")
    max_passages: int = field(5, help="QA: at most this many passages in the context (paper: 5)")
    gold_passage: str = field("swap", help="QA: gold passage only beyond max_passages: swap it in | drop")
    passage_title: bool = field(True, help="QA (DPR format): prefix each passage with its title")
    dev_fraction: float = field(0.01, help="if-train: seeded share of train examples held out as validation")
    per_source: int = field(2000, help="reset-seed: examples per training set (paper: 2,000)")

    def check(self) -> None:
        templates.TEMPLATES.check(self.template)
        if self.on_bad_rows not in ("error", "skip"):
            raise ResetkitError(f"--on-bad-rows must be error or skip, not {self.on_bad_rows!r}")
        if self.gold_passage not in ("swap", "drop"):
            raise ResetkitError(f"gold_passage must be swap or drop, not {self.gold_passage!r}")
        if self.limit is not None and self.limit < 1:
            raise ResetkitError("--limit must be at least 1")


# config keys that change each corpus's rows (only these go into the version id)
CONFIG_KEYS = {
    "if-train": ("template", "seed", "limit", "on_bad_rows", "dev_fraction"),
    "if-eval": ("template", "limit", "on_bad_rows"),
    "cd-train": ("template", "limit", "on_bad_rows", "max_passages", "gold_passage", "passage_title"),
    "cd-eval": ("template", "limit", "on_bad_rows", "max_passages", "gold_passage", "passage_title"),
    "mtl": ("seed",),
    "reset-seed": ("seed", "per_source"),
}


def corpus_config(corpus: str, cfg: BuildConfig) -> dict:
    full = dataclasses.asdict(cfg)
    return {k: full[k] for k in CONFIG_KEYS[corpus]}


def output_splits(role: str, available: list[str]) -> dict[str, str]:
    """upstream split -> output split for a source feeding a corpus of ``role``."""
    if role == "if-train":
        return {s: s for s in ("train", "validation") if s in available}
    if role == "cd-train":
        return {s: s for s in ("train", "validation", "test") if s in available}
    # evaluation sources: their test split, or the only split there is
    if "test" in available:
        return {"test": "test"}
    if len(available) == 1:
        return {available[0]: "test"}
    raise ResetkitError(f"cannot tell which split to evaluate on among {', '.join(available)}: "
                        f"pass a single file or a folder with test* files")


def declared_splits(corpus: str) -> list[str]:
    return {"if-train": ["train", "validation"], "cd-train": ["train", "validation", "test"]}.get(corpus, ["test"])
