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


# the top-1 selection (judging/select.py; one row per example, the RESET fine-tuning set)
SELECTION = pa.schema([
    ("example_id", pa.string()), ("source", pa.string()), ("objective", pa.string()),
    ("task", pa.string()), ("split", pa.string()), ("prompt", pa.string()), ("response", pa.string()),
    ("template", pa.string()), ("instruction", pa.string()), ("question", pa.string()),
    ("context", pa.string()), ("refs", pa.list_(pa.string())),
    ("score", pa.float64()), ("s_task", pa.float64()), ("s_instr", pa.float64()),
    ("s_faith", pa.float64()), ("metrics", pa.string()),
    ("candidate_id", pa.string()), ("temperature", pa.float64()), ("top_k", pa.int32()),
    ("top_p", pa.float64()), ("seed", pa.int64()), ("arm", pa.string()), ("sample_index", pa.int32()),
    ("greedy", pa.bool_()), ("duplicate_of", pa.string()), ("model", pa.string()),
    ("model_revision", pa.string()), ("backend", pa.string()), ("num_tokens", pa.int32()),
    ("finish_reason", pa.string()), ("n_candidates", pa.int64()), ("n_eligible", pa.int64()),
])

# one row per evaluated example (pipeline/evaluate.py; read by judging/report.py)
EVAL = pa.schema([
    ("example_id", pa.string()),
    ("source", pa.string()),
    ("task", pa.string()),
    ("objective", pa.string()),
    ("seen", pa.bool_()),            # the source is in the training data (paper Table 4: not italic)
    ("prompt", pa.string()),
    ("generation", pa.string()),
    ("gold", pa.string()),
    ("gen_tokens", pa.int32()),
    ("gold_tokens", pa.int32()),
    ("length_unit", pa.string()),    # "tokenizer:<name>" or "whitespace"
    ("finish_reason", pa.string()),
    ("faithfulness", pa.float64()),  # span coverage (extractive) / SummaC-ZS (abstractive); null for IF
    ("instruction", pa.float64()),   # LLM rating / 10 (open-ended); null otherwise or unparseable
    ("task_score", pa.float64()),    # exact match (extractive) / ROUGE-L F1 (abstractive); null for IF
    ("metrics", pa.string()),        # JSON: every metric the judges wrote for the candidate
    ("candidate_id", pa.string()),
    ("model", pa.string()),
    ("model_revision", pa.string()),
    ("label", pa.string()),          # the configuration name runs are grouped by in the report
    ("seed", pa.int64()),
    ("suite", pa.string()),
    ("judge_versions", pa.string()),  # canonical JSON {judge: version}
    ("error", pa.string()),
])

def check_columns(schema: pa.Schema, required, what: str, where: str = "") -> None:
    """Raise a clear error naming every missing column, before any work."""
    from .errors import ResetkitError

    missing = [c for c in required if c not in schema.names]
    if missing:
        loc = f" ({where})" if where else ""
        raise ResetkitError(f"{what}{loc} is missing column(s): {', '.join(missing)}")
