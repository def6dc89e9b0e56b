-- Selection card: how often each decoding setting (arm, temperature, top_k) won, against how
-- often it was sampled.  Reads selection; $candidate_files as in signals.sql.
WITH sampled AS (
    SELECT arm, temperature, top_k, count(*) AS candidates
    FROM read_parquet($candidate_files) GROUP BY ALL
),
won AS (
    SELECT arm, temperature, top_k, count(*) AS wins FROM selection GROUP BY ALL
)
SELECT s.arm, s.temperature, s.top_k, s.candidates, coalesce(w.wins, 0) AS wins,
       coalesce(w.wins, 0) / nullif((SELECT count(*) FROM selection), 0) AS share_of_wins
FROM sampled AS s LEFT JOIN won AS w
    ON s.arm IS NOT DISTINCT FROM w.arm AND s.temperature IS NOT DISTINCT FROM w.temperature
   AND s.top_k IS NOT DISTINCT FROM w.top_k
ORDER BY s.arm, s.temperature, s.top_k
