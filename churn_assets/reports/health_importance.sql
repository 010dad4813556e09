-- The reference model's importance of each judged column in the page's cohort, with its drift.
SELECT column_name, importance, score AS psi, tier, reference_model_version
FROM drift_metrics
WHERE cohort_month = $month AND method = 'psi'
ORDER BY importance DESC NULLS LAST, column_name;
