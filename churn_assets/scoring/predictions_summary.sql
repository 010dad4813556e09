-- What a cohort's scoring run shows, counted in the table it has just written.
SELECT count(*) AS row_count,
       any_value(model_version) AS model_version,
       avg(churn_probability) AS mean_churn_probability,
       count(*) FILTER (WHERE bucket = 'A') AS bucket_a,
       count(*) FILTER (WHERE bucket = 'B') AS bucket_b,
       count(*) FILTER (WHERE bucket = 'C') AS bucket_c,
       count(*) FILTER (WHERE control_group) AS control_group_users,
       any_value(bucket_policy) AS bucket_policy,
       count(top_reasons) AS explained_users
FROM predictions
WHERE cohort_month = $cohort;
