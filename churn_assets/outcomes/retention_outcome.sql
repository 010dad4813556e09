-- Churn of actioned vs control users of one labelled cohort, per bucket: what acting was worth.
SELECT p.bucket,
       count(*) FILTER (WHERE NOT p.control_group) AS actioned_users,
       coalesce(sum(l.is_churn) FILTER (WHERE NOT p.control_group), 0) AS actioned_churners,
       count(*) FILTER (WHERE p.control_group) AS control_users,
       coalesce(sum(l.is_churn) FILTER (WHERE p.control_group), 0) AS control_churners
FROM predictions p
JOIN labels l ON l.msno = p.msno AND l.cohort_month = p.cohort_month
WHERE p.cohort_month = $cohort AND p.control_group IS NOT NULL
GROUP BY p.bucket
ORDER BY p.bucket;
