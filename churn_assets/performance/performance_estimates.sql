-- The champion's performance estimated from its scores before the cohort's labels land (DESIGN §5
-- performance_estimates), replacing that cohort's rows for the version that scored it.
CREATE TABLE IF NOT EXISTS performance_estimates (
    cohort_month DATE NOT NULL,
    model_version VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    estimate DOUBLE,
    low DOUBLE,
    high DOUBLE,
    confidence DOUBLE,
    users BIGINT NOT NULL,
    estimated_at TIMESTAMP NOT NULL
);
DELETE FROM performance_estimates WHERE cohort_month = $cohort AND model_version = $version;
INSERT INTO performance_estimates BY NAME SELECT * FROM estimate_rows;
