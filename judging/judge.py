"""The judging stage's front door: the judge interface (judging/api.py) and the run functions
(judging/run.py, where the incremental, columnar read/score/write path is described), importable
from one place::

    run_judges(store, pool_ref, judges, cfg, *, name="scores", progress=True) -> DatasetVersion
    plan_judges(store, pool_ref, judges, cfg, *, name="scores") -> dict   (what a run would do)
"""

from __future__ import annotations

from .api import DEFAULT_JUDGES, JUDGES, RETRYABLE, Judge, JudgeConfig, Score
from .run import instantiate, plan_judges, run_judges, scores_wide

__all__ = ["JudgeConfig", "Judge", "JUDGES", "RETRYABLE", "DEFAULT_JUDGES", "Score", "instantiate",
           "run_judges", "plan_judges", "scores_wide"]
