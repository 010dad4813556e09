-- One week's at-risk list: the newest scored cohort's users in buckets A and B outside the
-- control group, and what changed since the list before it (new, moved, left), replacing
-- whatever that week had before. Users who left show their bucket now, when still scored.
CREATE TABLE IF NOT EXISTS at_risk_lists (
    week DATE NOT NULL,
    cohort_month DATE NOT NULL,
    msno VARCHAR NOT NULL,
    churn_probability DOUBLE,
    bucket VARCHAR,
    action VARCHAR,
    top_reasons VARCHAR,
    change VARCHAR NOT NULL,
    previous_bucket VARCHAR,
    model_version VARCHAR,
    bucket_policy VARCHAR,
    listed_at TIMESTAMP NOT NULL
);
DELETE FROM at_risk_lists WHERE week = $week;
INSERT INTO at_risk_lists BY NAME
WITH scored AS (
    SELECT msno, churn_probability, bucket, top_reasons, model_version, bucket_policy,
           coalesce(control_group, false) AS control_group
    FROM predictions
    WHERE cohort_month = $cohort
),
listed AS (
    SELECT * FROM scored WHERE bucket IN ('A', 'B') AND NOT control_group
),
previous AS (
    SELECT msno, bucket
    FROM at_risk_lists
    WHERE week = (SELECT max(week) FROM at_risk_lists WHERE week < $week)
      AND change <> 'left'
)
SELECT $week AS week,
       $cohort AS cohort_month,
       coalesce(l.msno, p.msno) AS msno,
       coalesce(l.churn_probability, s.churn_probability) AS churn_probability,
       coalesce(l.bucket, s.bucket) AS bucket,
       a.action,
       coalesce(l.top_reasons, s.top_reasons) AS top_reasons,
       CASE
           WHEN p.msno IS NULL THEN 'new'
           WHEN l.msno IS NULL THEN 'left'
           WHEN p.bucket <> l.bucket THEN 'moved ' || p.bucket || ' to ' || l.bucket
           ELSE 'unchanged'
       END AS change,
       p.bucket AS previous_bucket,
       coalesce(l.model_version, s.model_version) AS model_version,
       coalesce(l.bucket_policy, s.bucket_policy) AS bucket_policy,
       $listed_at AS listed_at
FROM listed AS l
FULL OUTER JOIN previous AS p ON l.msno = p.msno
LEFT JOIN scored AS s ON l.msno IS NULL AND s.msno = p.msno
LEFT JOIN actions AS a ON a.bucket = coalesce(l.bucket, s.bucket);
-- The list as written, riskiest first, those who left after it.
SELECT msno, churn_probability, bucket, action, top_reasons, change, previous_bucket
FROM at_risk_lists
WHERE week = $week
ORDER BY change = 'left', bucket, churn_probability DESC, msno;
