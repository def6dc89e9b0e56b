-- Selection card: examples in / eligible / selected and the winners' score distribution per
-- source.  Reads winners and selection; $example_files as in signals.sql.
WITH per_example AS (
    SELECT coalesce(e.source, '(unknown)') AS source, w.n_eligible
    FROM winners AS w LEFT JOIN read_parquet($example_files) AS e ON e.id = w.example_id
),
counts AS (
    SELECT source, count(*) AS examples_in, count(*) FILTER (WHERE n_eligible > 0) AS eligible
    FROM per_example GROUP BY source
),
dist AS (
    SELECT source, count(*) AS selected,
           avg(score) AS mean, min(score) AS min, quantile_cont(score, 0.25) AS p25,
           median(score) AS median, quantile_cont(score, 0.75) AS p75, max(score) AS max,
           avg(s_task) AS mean_s_task, avg(s_instr) AS mean_s_instr, avg(s_faith) AS mean_s_faith
    FROM selection GROUP BY source
)
SELECT c.source, c.examples_in, c.eligible, coalesce(d.selected, 0) AS selected,
       d.mean, d.min, d.p25, d.median, d.p75, d.max, d.mean_s_task, d.mean_s_instr, d.mean_s_faith
FROM counts AS c LEFT JOIN dist AS d USING (source)
ORDER BY c.source
