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
-- Output: example_id, candidate_id, task, objective, finish_reason, s_task, s_instr, s_faith,
-- has_task_metric (the task has a metric for s_task; open_ended has none: s_task = 0, DESIGN §7).
-- A signal is NULL when its score is missing, NULL or NaN.  A duplicate candidate
-- (duplicate_of set) takes the scores of the candidate it duplicates: the judges score each
-- distinct text of an example once.
WITH metric_map AS (
    SELECT m.task, m.signal, m.metric FROM (SELECT unnest($metric_map) AS m)
),
judge_versions AS (
    SELECT v.judge, v.version FROM (SELECT unnest($judge_versions) AS v)
),
examples AS (
    SELECT id AS example_id, task, objective FROM read_parquet($example_files)
),
candidates AS (
    SELECT example_id, candidate_id, coalesce(duplicate_of, candidate_id) AS score_key, finish_reason
    FROM read_parquet($candidate_files)
),
scores AS (
    SELECT s.candidate_id AS score_key, s.metric, s.value
    FROM read_parquet($score_files) AS s
    SEMI JOIN judge_versions AS jv ON s.judge = jv.judge AND s.judge_version = jv.version
    WHERE s.value IS NOT NULL AND NOT isnan(s.value)
      AND s.metric IN (SELECT metric FROM metric_map)
),
signals AS (   -- one row per candidate and signal, from the metric mapped for its task
    SELECT c.candidate_id, mm.signal, max(s.value) AS value
    FROM candidates AS c
    JOIN examples AS e USING (example_id)
    JOIN metric_map AS mm ON mm.task = e.task
    JOIN scores AS s ON s.score_key = c.score_key AND s.metric = mm.metric
    GROUP BY c.candidate_id, mm.signal
),
pivoted AS (
    SELECT candidate_id,
           max(value) FILTER (WHERE signal = 'task')  AS s_task,
           max(value) FILTER (WHERE signal = 'instr') AS s_instr,
           max(value) FILTER (WHERE signal = 'faith') AS s_faith
    FROM signals
    GROUP BY candidate_id
)
SELECT c.example_id, c.candidate_id, e.task, e.objective, c.finish_reason,
       p.s_task, p.s_instr, p.s_faith,
       e.task IN (SELECT task FROM metric_map WHERE signal = 'task') AS has_task_metric
FROM candidates AS c
LEFT JOIN examples AS e USING (example_id)
LEFT JOIN pivoted AS p USING (candidate_id)
