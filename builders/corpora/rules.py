"""The corpus rules (paper §3 and A.1), each written once and used by both the row path
(``Rules.admit_row``) and the columnar path (``Rules.admit_table``):

- an id seen before is dropped (``duplicate_id``);
- if-train: a repeated (instruction, response) pair is dropped (``duplicate``; the
  instruction case- and space-normalised by ``norm_key``, the first source wins), and a
  seeded share of train examples is held out as validation (``held_out``);
- if-eval / cd-eval: an example whose instruction, question or article is in the training
  corpus is dropped (``seen_in_training``); if-eval also drops repeated instructions.
"""

from __future__ import annotations

import collections
import hashlib

import pyarrow as pa

from resetkit.errors import ResetkitError
from resetkit.store import DatasetVersion, Store

from ..sources import columnar
from ..sources.base import Context, norm_key
from .config import TRAIN_OF


def digest(text: str) -> bytes:
    """A short key for de-duplication sets (never stored).  sha256 because it is the fastest
    hashlib digest where the CPU has SHA extensions, as x86-64 and ARM64 servers do."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:10]


def dedup_key(instruction: str | None, response: bytes) -> bytes:
    """if-train's key: ``digest(norm_key(instruction) + NUL + response)``, the response as
    UTF-8 bytes (the columnar path hashes them straight from Arrow)."""
    h = hashlib.sha256((norm_key(instruction) + "\x00").encode("utf-8"))
    h.update(response)
    return h.digest()[:10]


def unseen_key(row: dict) -> str:
    """What makes an example 'seen': its instruction (IF), question (QA) or article (summaries)."""
    if row["objective"] == "instruction":
        return norm_key(row["instruction"])
    return norm_key(row["question"] if row["question"] is not None else row["context"])


def held_out(example_id: str, seed: int, fraction: float) -> bool:
    """Seeded, order-free hold-out: an example's fate depends only on its id and the seed (the
    first 6 bytes of sha256("SEED:ID") against the fraction)."""
    value = int.from_bytes(hashlib.sha256(f"{seed}:{example_id}".encode("utf-8")).digest()[:6], "big")
    return value < fraction * 16 ** 12


def train_keys(train_ref: DatasetVersion) -> set[bytes]:
    keys: set[bytes] = set()
    cols = ["objective", "instruction", "question", "context"]
    for batch in train_ref.iter_batches(columns=cols, batch_size=8192):
        for row in batch.to_pylist():
            keys.add(digest(unseen_key(row)))
    return keys


def resolve_train(store: Store, corpus: str, from_refs: list[str]) -> DatasetVersion | None:
    want = TRAIN_OF[corpus]
    for ref in from_refs:
        if ref.partition("@")[0] == want:
            return store.resolve(ref)
    if from_refs:
        raise ResetkitError(f"--from for {corpus} must name {want} (got {', '.join(from_refs)})")
    if store.exists(want):
        return store.resolve(want)
    if corpus == "if-eval":  # the paper's rule needs it
        raise ResetkitError(f"if-eval keeps only examples unseen in if-train, and the store {store.root} "
                            f"has no if-train: run `resetkit build if-train` first (or pass --from)")
    return None


class Rules:
    """The rules of one corpus build, over its sources in order (first one wins)."""

    def __init__(self, corpus: str, seed: int, dev_fraction: float, seen_train: set[bytes] = frozenset()):
        self.corpus, self.seed, self.dev_fraction = corpus, seed, dev_fraction
        self.seen_train = seen_train
        self.dedup = corpus in ("if-train", "if-eval")
        self.ids: set[str] = set()
        self.keys: set[bytes] = set()   # if-train: (instruction, response); if-eval: instruction

    def key(self, row: dict) -> bytes | None:
        """The row's de-duplication / 'seen' key (None where the corpus has no such rule)."""
        if self.corpus == "if-train":
            return dedup_key(row["instruction"], row["response"].encode("utf-8"))
        if self.corpus in TRAIN_OF:
            return digest(unseen_key(row))
        return None

    def admit(self, example_id: str, key: bytes | None) -> str | None:
        """None if the example is kept (and remembered), else the reason it is dropped."""
        if example_id in self.ids:
            return "duplicate_id"
        if key is not None and key in self.seen_train:
            return "seen_in_training"
        if self.dedup:
            if key in self.keys:
                return "duplicate"
            self.keys.add(key)
        self.ids.add(example_id)
        return None

    def split(self, example_id: str, split: str) -> str:
        """if-train: a held-out train example goes to validation."""
        if self.corpus == "if-train" and split == "train" and held_out(example_id, self.seed, self.dev_fraction):
            return "validation"
        return split

    def admit_row(self, row: dict, ctx: Context) -> bool:
        """The row path: apply the rules to one example (its split may change); False drops it."""
        reason = self.admit(row["id"], self.key(row))
        if reason is not None:
            ctx.drop(reason)
            return False
        row["split"] = self.split(row["id"], row["split"])
        return True

    def admit_table(self, table: pa.Table, ctx: Context) -> pa.Table:
        """The columnar path (if-train, a table of one output split): the same rules, keys and
        order as ``admit_row``; the keys hashed from Arrow's bytes, the set look-ups a loop."""
        ids = table.column("id").to_pylist()
        keys = map(dedup_key, table.column("instruction").to_pylist(), columnar.row_bytes(table.column("response")))
        keep, drops = [], collections.Counter()
        for i, (example_id, key) in enumerate(zip(ids, keys)):
            reason = self.admit(example_id, key)
            if reason is None:
                keep.append(i)
            else:
                drops[reason] += 1
        for reason, n in drops.items():
            ctx.drop(reason, n)
        if len(keep) < table.num_rows:
            table = table.take(pa.array(keep, pa.int64()))
        splits = table.column("split").unique().to_pylist()
        if splits == ["train"] and self.dev_fraction > 0:
            split = [self.split(ids[i], "train") for i in keep]
            table = table.set_column(table.schema.get_field_index("split"), "split", pa.array(split, pa.string()))
        return table
