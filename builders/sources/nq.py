"""Natural Questions, read from DPR retriever results (train/dev/test files)."""

from __future__ import annotations

from .dpr import DPRSource


class NQ(DPRSource):
    name = "nq"
    pretty = "Natural Questions"
    where = "DPR retriever results (github.com/facebookresearch/DPR: retriever/nq-{train,dev,test} results)"
    license = "cc-by-sa-3.0"
    role = "cd-train"
    paper_rows = "69,639 / 8,757 / 13,368 (paper Table 1)"


SOURCE = NQ()
