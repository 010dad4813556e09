-- How many users each bucket held, cohort by cohort, and which version scored them.
SELECT cohort_month, bucket, count(*) AS users, any_value(model_version) AS model_version
FROM predictions
WHERE cohort_month <= $month
GROUP BY cohort_month, bucket
ORDER BY cohort_month, bucket;
