-- Per-candidate signal scores (DESIGN.md §4-§5), one row per candidate of the pool.
--
-- Reads the store's Parquet directly (no pandas):
--   $candidate_files  list of the pool's Parquet files (schema CANDIDATES)
--   $score_files      list of the scores dataset's Parquet files (schema SCORES, long table)
--   $example_files    list of the examples dataset's Parquet files (schema EXAMPLES)
--   $metric_map       list of {task, signal, metric}: which metric stands for which signal
--                     ('task' | 'instr' | 'faith') on which task
--   $judge_versions   list of {judge, version}: the judge versions to use (the newest per judge)
--
-- Output: example_id, candidate_id, score_key (the candidate whose text was scored: itself or the
-- one it duplicates), temperature, task, objective, finish_reason, s_task, s_instr, s_faith, and
-- has_task_metric / has_instr_metric / has_faith_metric: the task has a metric for that signal
-- (open_ended has no task metric: s_task = 0, DESIGN §7; `--metric faith.TASK=none` removes the
-- faithfulness term of TASK the same way).
-- A signal is NULL when its score is missing, NULL or NaN.  The scores are pivoted once per
-- (scored text, task the metric is mapped for) and joined to each candidate on its example's
-- task: one aggregate and two joins, whatever the mapping.  A duplicate candidate
-- (duplicate_of set) takes the scores of the candidate it duplicates: the judges score each
-- distinct text of an example once.
WITH metric_map AS (
    SELECT m.task, m.signal, m.metric FROM (SELECT unnest($metric_map) AS m)
),
judge_versions AS (
    SELECT v.judge, v.version FROM (SELECT unnest($judge_versions) AS v)
),
signals AS (   -- per scored text and task: the value of the metric mapped to each signal
    SELECT s.candidate_id AS score_key, mm.task,
           max(s.value) FILTER (WHERE mm.signal = 'task')  AS s_task,
           max(s.value) FILTER (WHERE mm.signal = 'instr') AS s_instr,
           max(s.value) FILTER (WHERE mm.signal = 'faith') AS s_faith
    FROM read_parquet($score_files) AS s
    SEMI JOIN judge_versions AS jv ON s.judge = jv.judge AND s.judge_version = jv.version
    JOIN metric_map AS mm ON mm.metric = s.metric
    WHERE s.value IS NOT NULL AND NOT isnan(s.value)
    GROUP BY s.candidate_id, mm.task
)
SELECT c.example_id, c.candidate_id, coalesce(c.duplicate_of, c.candidate_id) AS score_key, c.temperature,
       e.task, e.objective, c.finish_reason,
       g.s_task, g.s_instr, g.s_faith,
       e.task IN (SELECT task FROM metric_map WHERE signal = 'task') AS has_task_metric,
       e.task IN (SELECT task FROM metric_map WHERE signal = 'instr') AS has_instr_metric,
       e.task IN (SELECT task FROM metric_map WHERE signal = 'faith') AS has_faith_metric
FROM read_parquet($candidate_files) AS c
LEFT JOIN (SELECT id, task, objective FROM read_parquet($example_files)) AS e ON e.id = c.example_id
LEFT JOIN signals AS g ON g.score_key = coalesce(c.duplicate_of, c.candidate_id) AND g.task = e.task
