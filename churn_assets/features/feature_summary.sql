-- Summary of one cohort's feature columns for the asset's metadata, computed where the rows are
-- (a cohort can hold millions of users): one row per statistic, one column per feature the
-- current SQL produces.
WITH cohort AS (
    SELECT * EXCLUDE (msno, cohort_month) FROM cohort_features
)
SELECT 'null_share' AS statistic, avg(CAST(COLUMNS(*) IS NULL AS DOUBLE)) FROM cohort
UNION ALL BY NAME
SELECT 'mean' AS statistic, avg(CAST(COLUMNS(*) AS DOUBLE)) FROM cohort
UNION ALL BY NAME
SELECT 'std' AS statistic, stddev_samp(CAST(COLUMNS(*) AS DOUBLE)) FROM cohort
UNION ALL BY NAME
SELECT 'min' AS statistic, min(CAST(COLUMNS(*) AS DOUBLE)) FROM cohort
UNION ALL BY NAME
SELECT 'median' AS statistic, approx_quantile(CAST(COLUMNS(*) AS DOUBLE), 0.5) FROM cohort
UNION ALL BY NAME
SELECT 'max' AS statistic, max(CAST(COLUMNS(*) AS DOUBLE)) FROM cohort;
