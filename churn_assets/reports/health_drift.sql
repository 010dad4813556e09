-- Drift of every cohort up to the page's month: the weighted feature PSI and the champion's score
-- PSI, both beyond noise, with their tiers, and how many judged columns drifted out of how many.
SELECT
    cohort_month,
    any_value(adjusted_score) FILTER (WHERE method = 'weighted_psi') AS weighted_psi,
    any_value(tier) FILTER (WHERE method = 'weighted_psi') AS data_tier,
    any_value(adjusted_score) FILTER (WHERE method = 'prediction_psi') AS prediction_psi,
    any_value(tier) FILTER (WHERE method = 'prediction_psi') AS prediction_tier,
    count(*) FILTER (WHERE method = 'psi') AS judged_columns,
    count(*) FILTER (WHERE method = 'psi' AND drifted) AS drifted_columns
FROM drift_metrics
WHERE cohort_month <= $month
GROUP BY cohort_month
ORDER BY cohort_month;
