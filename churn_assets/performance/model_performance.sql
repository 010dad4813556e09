-- Backtest scores of every registered version on one labelled cohort, replacing that cohort's rows.
CREATE TABLE IF NOT EXISTS model_performance (
    model_version VARCHAR NOT NULL,
    cohort_month DATE NOT NULL,
    auc DOUBLE,
    log_loss DOUBLE,
    f2 DOUBLE,
    ks DOUBLE,
    lift_top_decile DOUBLE,
    brier DOUBLE,
    lift_top_1pct DOUBLE,
    lift_top_5pct DOUBLE,
    churn_rate DOUBLE,
    churn_rate_top_decile DOUBLE,
    churn_rate_second_decile DOUBLE,
    bucket_a_precision DOUBLE,
    bucket_a_recall DOUBLE,
    users BIGINT NOT NULL,
    is_champion BOOLEAN NOT NULL,
    out_of_time BOOLEAN NOT NULL,
    evaluated_at TIMESTAMP NOT NULL
);
ALTER TABLE model_performance ADD COLUMN IF NOT EXISTS normalized_log_loss DOUBLE;
DELETE FROM model_performance WHERE cohort_month = $cohort;
INSERT INTO model_performance BY NAME SELECT * FROM performance_rows;
