-- The champion's metric-by-metric judgement on one cohort (bootstrap interval against its
-- expected level), replacing that cohort's rows: the history the persistence rule counts.
CREATE TABLE IF NOT EXISTS performance_judgements (
    cohort_month DATE NOT NULL,
    model_version VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    interval_low DOUBLE,
    interval_high DOUBLE,
    confidence DOUBLE,
    expected DOUBLE,
    expected_source VARCHAR,
    expected_cohorts VARCHAR,
    failed BOOLEAN NOT NULL,
    shortfall_z DOUBLE,
    beyond_doubt BOOLEAN,
    evaluated_at TIMESTAMP NOT NULL
);
-- Warehouses written before a single dip was told from one beyond doubt.
ALTER TABLE performance_judgements ADD COLUMN IF NOT EXISTS shortfall_z DOUBLE;
ALTER TABLE performance_judgements ADD COLUMN IF NOT EXISTS beyond_doubt BOOLEAN;
DELETE FROM performance_judgements WHERE cohort_month = $cohort;
INSERT INTO performance_judgements BY NAME SELECT * FROM judgement_rows;
