-- The outcome of one cohort, replacing what it had before.
CREATE TABLE IF NOT EXISTS retention_outcomes (
    cohort_month DATE NOT NULL,
    bucket VARCHAR NOT NULL,
    actioned_users BIGINT,
    actioned_churn_rate DOUBLE,
    control_users BIGINT,
    control_churn_rate DOUBLE,
    churn_reduction DOUBLE,
    ci_low DOUBLE,
    ci_high DOUBLE,
    confidence DOUBLE,
    evaluated_at TIMESTAMP NOT NULL
);
DELETE FROM retention_outcomes WHERE cohort_month = $cohort;
INSERT INTO retention_outcomes BY NAME SELECT * FROM outcome_rows;
