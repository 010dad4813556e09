-- Per column, from drift_bin_counts: the population stability index, the Jensen-Shannon distance
-- over the same bins, and what sampling noise alone would give (drift_psi).
--
-- PSI = sum over bins of (q - p) * ln(q / p), p the reference's share of a bin and q the current
-- one's; a bin empty on one side counts half a row there (0.5 / n), the small epsilon that keeps
-- the logarithm finite and shrinks as the side grows. Between two samples of one distribution,
-- n_eff * PSI follows a chi-square law with (bins - 1) degrees of freedom, n_eff = 1 / (1/n_ref +
-- 1/n_cur): its mean is expected_psi, and noise_limit is its quantile at the normal deviate
-- $noise_z (Wilson-Hilferty approximation), a PSI sampling noise alone exceeds that rarely.
CREATE OR REPLACE TEMP TABLE drift_psi AS
WITH sized AS (
    SELECT
        *,
        sum(reference_count) OVER by_column AS reference_rows,
        sum(current_count) OVER by_column AS current_rows
    FROM drift_bin_counts
    WINDOW by_column AS (PARTITION BY column_name)
),
shares AS (
    SELECT
        column_name,
        reference_rows,
        current_rows,
        reference_count / reference_rows AS p_raw,
        current_count / current_rows AS q_raw,
        greatest(reference_count, 0.5) / reference_rows AS p,
        greatest(current_count, 0.5) / current_rows AS q
    FROM sized
),
per_column AS (
    SELECT
        column_name,
        any_value(reference_rows)::BIGINT AS reference_rows,
        any_value(current_rows)::BIGINT AS current_rows,
        count(*) AS bins,
        sum((q - p) * ln(q / p)) AS psi,
        coalesce(sum(p_raw * ln(2 * p_raw / (p_raw + q_raw))) FILTER (WHERE p_raw > 0), 0)
            + coalesce(sum(q_raw * ln(2 * q_raw / (p_raw + q_raw))) FILTER (WHERE q_raw > 0), 0)
            AS twice_js,
        1.0 / any_value(reference_rows) + 1.0 / any_value(current_rows) AS inverse_n_eff
    FROM shares
    GROUP BY column_name
)
SELECT
    column_name,
    reference_rows,
    current_rows,
    bins,
    psi,
    sqrt(greatest(twice_js / 2, 0) / ln(2)) AS js_distance,
    (bins - 1) * inverse_n_eff AS expected_psi,
    greatest(bins - 1, 1)
        * pow(
            1 - 2 / (9 * greatest(bins - 1, 1))
            + $noise_z * sqrt(2 / (9 * greatest(bins - 1, 1))),
            3
        )
        * inverse_n_eff AS noise_limit
FROM per_column;
