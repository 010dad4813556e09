-- One cohort's stored scores: what the champion announced before any label landed.
SELECT churn_probability, bucket, model_version
FROM predictions
WHERE cohort_month = $cohort
ORDER BY msno;
