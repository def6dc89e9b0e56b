"""Apply the external judges to a candidate pool and write the long ``scores`` table.

    run_judges(store, pool_ref, judges, cfg, *, name="scores", progress=True) -> DatasetVersion
    plan_judges(store, pool_ref, judges, cfg, *, name="scores") -> dict   (what a run would do)

(both in judging/run.py, the columnar read/group/write path; this module is the stage's front
door: the interface and the run functions, importable from one place)

Each judge (judging/api.py: the Judge interface and the JUDGES registry) scores the
candidates whose example task it covers (DESIGN.md §5) and emits rows of
resetkit.schemas.SCORES.  Example fields (task, objective, instruction, question, context,
refs) come from the examples dataset named in the pool manifest's ``extra["examples"]``.

Incremental: the newest earlier ``scores`` version of the same pool is read; its rows are
kept where (candidate, judge, judge_version) still holds, and only the rest is computed
(rows of judges not asked for this time are carried over unchanged).  Identical texts of
one example are judged once and the result copied to every duplicate.  The new version
lists the pool and examples as parents; ``extra["carried_from"]`` names the version rows
were reused from.
"""

from __future__ import annotations

from .api import DEFAULT_JUDGES, JUDGES, RETRYABLE, Judge, JudgeConfig, Score
from .run import instantiate, plan_judges, run_judges, scores_wide

__all__ = ["JudgeConfig", "Judge", "JUDGES", "RETRYABLE", "DEFAULT_JUDGES", "Score", "instantiate",
           "run_judges", "plan_judges", "scores_wide"]
