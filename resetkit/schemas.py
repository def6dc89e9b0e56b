"""The Arrow schemas between stages (DESIGN.md §4). Stages talk only through these.

Deviations from DESIGN.md, on purpose:
- examples.meta is a JSON string (sources keep different upstream fields);
- candidates gain ``error``: a request that failed after its retries is a row with
  finish_reason="error" and the message here, never a missing row.
"""

from __future__ import annotations

import pyarrow as pa

OBJECTIVES = ("instruction", "faithfulness")
TASKS = ("open_ended", "extractive_qa", "abstractive_qa", "summarization")
SPLITS = ("train", "validation", "test")

EXAMPLES = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("objective", pa.string()),
    ("task", pa.string()),
    ("split", pa.string()),
    ("instruction", pa.string()),
    ("question", pa.string()),
    ("context", pa.string()),
    ("passages", pa.list_(pa.string())),
    ("response", pa.string()),
    ("refs", pa.list_(pa.string())),
    ("prompt", pa.string()),
    ("template", pa.string()),
    ("meta", pa.string()),
])

CANDIDATES = pa.schema([
    ("example_id", pa.string()),
    ("candidate_id", pa.string()),
    ("model", pa.string()),
    ("model_revision", pa.string()),
    ("template", pa.string()),
    ("prompt", pa.string()),
    ("temperature", pa.float64()),
    ("top_k", pa.int32()),
    ("top_p", pa.float64()),
    ("seed", pa.int64()),
    ("arm", pa.string()),
    ("sample_index", pa.int32()),
    ("text", pa.string()),
    ("num_tokens", pa.int32()),
    ("finish_reason", pa.string()),
    ("greedy", pa.bool_()),
    ("duplicate_of", pa.string()),
    ("backend", pa.string()),
    ("error", pa.string()),
])

SCORES = pa.schema([
    ("candidate_id", pa.string()),
    ("judge", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
    ("raw", pa.string()),
    ("error", pa.string()),
    ("judge_version", pa.string()),
])


def check_columns(schema: pa.Schema, required, what: str, where: str = "") -> None:
    """Raise a clear error naming every missing column, before any work."""
    from .errors import ResetkitError

    missing = [c for c in required if c not in schema.names]
    if missing:
        loc = f" ({where})" if where else ""
        raise ResetkitError(f"{what}{loc} is missing column(s): {', '.join(missing)}")
