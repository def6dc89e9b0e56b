"""BioASQ from RobustQA (``awslabs/robustqa-acl23``), exported in DPR retriever-results format."""

from __future__ import annotations

from .dpr import DPRSource


class BioASQ(DPRSource):
    name = "bioasq"
    pretty = "BioASQ (RobustQA)"
    where = "RobustQA (github.com/awslabs/robustqa-acl23, registration needed), DPR retriever-results format"
    license = "cc-by-2.5"
    role = "cd-eval"
    paper_rows = "test 1,956 (paper Table 1)"


SOURCE = BioASQ()
