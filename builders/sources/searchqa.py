"""SearchQA from RobustQA, exported in DPR retriever-results format (snippets as ctxs)."""

from __future__ import annotations

from .dpr import DPRSource


class SearchQA(DPRSource):
    name = "searchqa"
    pretty = "SearchQA (RobustQA)"
    where = "RobustQA (github.com/awslabs/robustqa-acl23), DPR retriever-results format"
    license = "unknown"
    role = "cd-eval"
    paper_rows = "test 31,760 (paper Table 1)"


SOURCE = SearchQA()
