-- The batch's answer for one cohort, published beside its features for the HTTP API.
SELECT msno, churn_probability, bucket, model_version, top_reasons, bucket_policy
FROM predictions
WHERE cohort_month = $cohort;
