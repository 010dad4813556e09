-- Every retraining decision, as history: what triggered it, on what evidence, what was done.
CREATE TABLE IF NOT EXISTS retraining_decisions (
    decided_at TIMESTAMP NOT NULL,
    cohort_month DATE,
    trigger VARCHAR NOT NULL,
    evidence VARCHAR,
    action VARCHAR NOT NULL,
    reason VARCHAR,
    newest_labelled_cohort DATE,
    run_key VARCHAR,
    run_id VARCHAR
);
INSERT INTO retraining_decisions BY NAME SELECT * FROM decision_rows;
