-- The champion per customer segment on one labelled cohort, replacing that cohort's rows
-- (performance/segments.py): a segment of segment_column (city, registered_via,
-- last_payment_method_id, last_plan_days) with at least 10 churners and 10 stayers; its AUC with
-- DeLong's interval [low, high]; below: under expected_auc (the champion's expected level) beyond
-- doubt over all the cohort's segments judged (shortfall_z, Bonferroni). Information only.
CREATE TABLE IF NOT EXISTS segment_performance (
    cohort_month DATE NOT NULL,
    model_version VARCHAR NOT NULL,
    segment_column VARCHAR NOT NULL,
    segment_value DOUBLE NOT NULL,
    users BIGINT NOT NULL,
    churners BIGINT NOT NULL,
    churn_rate DOUBLE,
    auc DOUBLE,
    low DOUBLE,
    high DOUBLE,
    expected_auc DOUBLE,
    shortfall_z DOUBLE,
    below BOOLEAN,
    evaluated_at TIMESTAMP
);
DELETE FROM segment_performance WHERE cohort_month = $cohort;
INSERT INTO segment_performance BY NAME SELECT * FROM segment_rows;
