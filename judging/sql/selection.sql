-- The selection dataset: per example with an eligible candidate, the winning candidate
-- with its prompt, response, weighted score, component scores, every metric of the judges
-- used (JSON), and the candidate's provenance (decoding parameters, arm, model).
--
-- Reads the relation winners (top1.sql).  Parameters:
--   $candidate_files, $example_files, $score_files, $judge_versions   as in signals.sql
--   $min_score   NULL, or the score a winner must be above to be selected (--min-score)
-- Rows come sorted by example_id, so selecting twice writes identical files.
WITH judge_versions AS (
    SELECT v.judge, v.version FROM (SELECT unnest($judge_versions) AS v)
),
won AS (
    SELECT * FROM winners
    WHERE candidate_id IS NOT NULL AND ($min_score IS NULL OR score > $min_score)
),
cand AS (
    SELECT c.*, coalesce(c.duplicate_of, c.candidate_id) AS score_key
    FROM read_parquet($candidate_files) AS c
    SEMI JOIN won USING (candidate_id)
),
metrics AS (   -- every metric of the winner (and of the text it duplicates), as one JSON object
    SELECT s.candidate_id AS score_key,
           to_json(map_from_entries(list({'k': s.metric, 'v': s.value} ORDER BY s.metric))) AS metrics
    FROM (
        SELECT candidate_id, metric, max(CASE WHEN isnan(value) THEN NULL ELSE value END) AS value
        FROM read_parquet($score_files) AS s
        SEMI JOIN judge_versions AS jv ON s.judge = jv.judge AND s.judge_version = jv.version
        SEMI JOIN (SELECT score_key FROM cand) AS k ON k.score_key = s.candidate_id
        GROUP BY candidate_id, metric
    ) AS s
    GROUP BY s.candidate_id
)
SELECT w.example_id, e.source, e.objective, e.task, e.split,
       c.prompt, c.text AS response, c.template,
       e.instruction, e.question, e.context, e.refs,
       w.score, w.s_task, w.s_instr, w.s_faith,
       coalesce(m.metrics, '{}') AS metrics,
       w.candidate_id, c.temperature, c.top_k, c.top_p, c.seed, c.arm, c.sample_index,
       c.greedy, c.duplicate_of, c.model, c.model_revision, c.backend, c.num_tokens,
       c.finish_reason, w.n_candidates, w.n_eligible
FROM won AS w
JOIN cand AS c USING (candidate_id)
JOIN read_parquet($example_files) AS e ON e.id = w.example_id
LEFT JOIN metrics AS m ON m.score_key = c.score_key
ORDER BY w.example_id
