-- The champion's score distribution on the reference (reference_scores) and on the cohort
-- (current_scores), binned as the features are: the reference's deciles.
CREATE OR REPLACE TEMP TABLE drift_edges AS
WITH deciles AS (
    SELECT quantile_disc(churn_probability, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS edges
    FROM reference_scores
)
SELECT
    1 AS i,
    'churn_probability' AS column_name,
    FALSE AS categorical,
    edges[1] AS e1, edges[2] AS e2, edges[3] AS e3, edges[4] AS e4, edges[5] AS e5,
    edges[6] AS e6, edges[7] AS e7, edges[8] AS e8, edges[9] AS e9
FROM deciles;

CREATE OR REPLACE TEMP TABLE drift_bin_counts AS
WITH both_sides AS (
    SELECT TRUE AS is_reference, churn_probability AS value FROM reference_scores
    UNION ALL
    SELECT FALSE AS is_reference, churn_probability AS value FROM current_scores
)
SELECT
    e.column_name,
    drift_bin(v.value, e.categorical, e.e1, e.e2, e.e3, e.e4, e.e5, e.e6, e.e7, e.e8, e.e9)
        AS bin,
    count(*) FILTER (WHERE v.is_reference) AS reference_count,
    count(*) FILTER (WHERE NOT v.is_reference) AS current_count
FROM both_sides AS v, drift_edges AS e
GROUP BY ALL;
