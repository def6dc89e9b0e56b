-- Selection card: totals.  Reads winners (top1.sql) and selection (selection.sql).
-- $min_score: NULL or the --min-score threshold (winners not above it are not selected).
SELECT
    (SELECT count(*) FROM winners) AS examples_in,
    (SELECT count(*) FROM winners WHERE n_eligible > 0) AS examples_eligible,
    (SELECT count(*) FROM selection) AS selected,
    (SELECT count(*) FROM winners WHERE n_eligible = 0) AS examples_without_eligible,
    (SELECT count(*) FROM winners WHERE n_eligible > 0 AND $min_score IS NOT NULL
                                    AND score <= $min_score) AS examples_below_min_score,
    (SELECT coalesce(sum(n_candidates), 0) FROM winners) AS candidates,
    (SELECT coalesce(sum(n_eligible), 0) FROM winners) AS candidates_eligible,
    (SELECT coalesce(sum(n_error), 0) FROM winners) AS candidates_error,
    (SELECT coalesce(sum(n_unknown_example), 0) FROM winners) AS candidates_unknown_example,
    (SELECT coalesce(sum(n_missing_task_score), 0) FROM winners) AS candidates_missing_task_score,
    (SELECT coalesce(sum(n_missing_instr_score), 0) FROM winners) AS candidates_missing_instr_score,
    (SELECT coalesce(sum(n_missing_faith_score), 0) FROM winners) AS candidates_missing_faith_score,
    (SELECT count(*) FILTER (WHERE greedy) FROM selection) AS greedy_winners,
    (SELECT count(*) FILTER (WHERE duplicate_of IS NOT NULL) FROM selection) AS duplicate_winners,
    (SELECT count(*) FROM winners AS w SEMI JOIN selection AS s USING (example_id)
      WHERE w.tied) AS tied_winners,
    (SELECT count(*) FROM winners AS w SEMI JOIN selection AS s USING (example_id)
      WHERE w.tied AND w.score = 0) AS tied_winners_at_zero
