-- Weighted score (paper §5.1, DESIGN.md §5) and top-1 selection per example.
--
-- Reads the relation candidate_signals (example_id, candidate_id, score_key, temperature, task,
-- objective, finish_reason, s_task, s_instr, s_faith, has_task_metric, has_instr_metric,
-- has_faith_metric), as signals.sql writes it.
-- Parameters:
--   $w_task, $w_instr, $w_faith   weights; the paper: 1, 2, 2, i.e.
--                                 score = s_task + 2.0 * (I_instr * s_instr + I_faith * s_faith)
--
-- A signal whose task has no metric for it (open_ended's task score; a `--metric SIGNAL.TASK=none`)
-- contributes nothing and is never required.
--
-- Eligibility (DESIGN.md §7): a candidate is eligible unless its request failed
-- (finish_reason = 'error'), its example is unknown, or a score its example needs is missing
-- (s_task when the task has a task metric; s_instr for objective 'instruction' and s_faith for
-- objective 'faithfulness' when the task has a metric for them).
--
-- Top-1: the highest score.  Ties go to the candidate sampled at the lowest temperature (the
-- most likely text; greedy first), then to the smallest candidate_id, so the result is
-- deterministic.  The winner is taken with one arg_min aggregate over the key
-- (-score, temperature, candidate_id) - a hash aggregate per example, much cheaper in time and
-- memory than ranking every candidate with a window (QUALIFY row_number() ... = 1).
-- tied: several distinct texts (score_key) of the example's eligible candidates share the top
-- score exactly, so the tie-break decided the winner (found in the same aggregate: the smallest
-- and the largest score_key at the top score differ).
--
-- Output: one row per example of the pool; winner columns are NULL when no candidate of the
-- example is eligible (n_eligible = 0).  n_<reason> count the candidates ruled out per reason.
WITH scored AS (
    SELECT example_id, candidate_id, score_key, temperature, s_instr, s_faith,
           CASE WHEN has_task_metric THEN s_task ELSE 0.0 END AS s_task,
           CASE
               WHEN task IS NULL THEN 'unknown_example'
               WHEN finish_reason = 'error' THEN 'error'
               WHEN has_task_metric AND s_task IS NULL THEN 'missing_task_score'
               WHEN objective = 'instruction' AND has_instr_metric AND s_instr IS NULL THEN 'missing_instr_score'
               WHEN objective = 'faithfulness' AND has_faith_metric AND s_faith IS NULL THEN 'missing_faith_score'
           END AS ineligible,
           $w_task * (CASE WHEN has_task_metric THEN s_task ELSE 0.0 END)
             + (CASE WHEN objective = 'instruction' AND has_instr_metric THEN $w_instr * s_instr ELSE 0.0 END)
             + (CASE WHEN objective = 'faithfulness' AND has_faith_metric THEN $w_faith * s_faith ELSE 0.0 END)
             AS score
    FROM candidate_signals
),
top AS (
    SELECT example_id,
           count(*) AS n_candidates,
           count(*) FILTER (WHERE ineligible IS NULL) AS n_eligible,
           count(*) FILTER (WHERE ineligible = 'error') AS n_error,
           count(*) FILTER (WHERE ineligible = 'unknown_example') AS n_unknown_example,
           count(*) FILTER (WHERE ineligible = 'missing_task_score') AS n_missing_task_score,
           count(*) FILTER (WHERE ineligible = 'missing_instr_score') AS n_missing_instr_score,
           count(*) FILTER (WHERE ineligible = 'missing_faith_score') AS n_missing_faith_score,
           arg_min({'candidate_id': candidate_id, 'score': score, 's_task': s_task,
                    's_instr': s_instr, 's_faith': s_faith},
                   {'neg_score': -score, 'temperature': coalesce(temperature, 1e9),
                    'candidate_id': candidate_id})
               FILTER (WHERE ineligible IS NULL) AS w,
           -- the smallest and the largest text at the top score: different -> a tie
           arg_min(score_key, {'neg_score': -score, 'score_key': score_key})
               FILTER (WHERE ineligible IS NULL) AS top_text_first,
           arg_max(score_key, {'score': score, 'score_key': score_key})
               FILTER (WHERE ineligible IS NULL) AS top_text_last
    FROM scored
    GROUP BY example_id
)
SELECT example_id, n_candidates, n_eligible, n_error, n_unknown_example, n_missing_task_score,
       n_missing_instr_score, n_missing_faith_score, top_text_first <> top_text_last AS tied,
       w.candidate_id, w.score, w.s_task, w.s_instr, w.s_faith
FROM top
