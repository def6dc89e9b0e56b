"""Helpers for the training tests: tiny prompt/response datasets, and running ``resetkit train``
in a subprocess.

Why a subprocess: DeepSpeed initialises torch.distributed (and sets global ZeRO-3 state in
transformers) once per process; running it inside pytest would leak RANK/WORLD_SIZE and that
state into every later test.  The subprocess is also exactly what a user runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]

# four distinct examples; repeated, they make the "repeated tiny batch" the loss must fall on
EXAMPLES = [
    ("Question: What is the capital of France?\nAnswer:", " Paris is the capital of France."),
    ("Question: Who wrote the play Hamlet?\nAnswer:", " William Shakespeare wrote Hamlet."),
    ("Summarize the text in a few sentences.\nPassage: The cat sat on the mat.\nSummary:", " A cat sat on a mat."),
    ("Please write a short poem about the sea.\n### Response:", " The sea, the wind and the moon over the water."),
]


def rows(n_repeat: int = 16, extra_columns: bool = True) -> list[dict]:
    out = []
    for _ in range(n_repeat):
        for j, (p, r) in enumerate(EXAMPLES):
            row = {"prompt": p, "response": r}
            if extra_columns:
                row.update(example_id=f"ex{j}", source="test", score=1.0)
            out.append(row)
    return out


def add_dataset(store, name: str, splits: dict[str, list[dict]], config=None):
    with store.create(name, builder="test", config=config or {"n": {s: len(r) for s, r in splits.items()}}) as w:
        for split, rs in splits.items():
            w.write(split, pa.Table.from_pylist(rs))
    return w.result


def cli_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               RESETKIT_PROGRESS="0", PYTHONWARNINGS="ignore")
    env.setdefault("OMP_NUM_THREADS", "1")   # no thread oversubscription on a small shared machine
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def run_train(args, timeout: int = 600, **env) -> subprocess.CompletedProcess:
    """``resetkit train ARGS`` in a fresh interpreter (``env``: extra variables); the completed process."""
    return subprocess.run([sys.executable, "-m", "resetkit.cli", "train", *map(str, args)], cwd=REPO,
                          env={**cli_env(), **env}, capture_output=True, text=True, timeout=timeout)
