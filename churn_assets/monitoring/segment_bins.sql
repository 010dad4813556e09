-- Per customer segment (a value of one of the $segment_columns, e.g. city 13) and feature column,
-- how many reference and current rows of that segment fall in each bin (drift_bin_counts, keyed
-- by a struct of segment_column, segment_value and column_name, which psi.sql reads as it reads a
-- column name). Both sides are thinned by a hash of msno ($reference_hash_cut, $current_hash_cut);
-- $segment_columns are in the order of the features table, as COLUMNS(...) lists them. A member
-- belongs to one segment of each segment column; a missing value is in no segment.

-- Every segment's users on both sides, the rows the sample keeps, and whether it is judged: at
-- least $min_rows sampled rows on each side (Cochran: 5 rows a bin for the deciles), and among
-- the $max_segments largest of its column in the current cohort.
CREATE OR REPLACE TEMP TABLE drift_segment_sizes AS
WITH sides AS (
    SELECT
        cohort_month <> $cohort AS is_reference,
        hash(msno) <= CASE
            WHEN cohort_month = $cohort THEN $current_hash_cut ELSE $reference_hash_cut
        END AS sampled,
        unnest($segment_columns) AS segment_column,
        unnest([*COLUMNS(lambda c: list_contains($segment_columns, c))]::DOUBLE[])
            AS segment_value
    FROM features
    WHERE cohort_month IN (SELECT unnest($reference_cohorts::DATE[])) OR cohort_month = $cohort
),
sized AS (
    SELECT
        segment_column,
        segment_value,
        count(*) FILTER (WHERE is_reference) AS reference_users,
        count(*) FILTER (WHERE NOT is_reference) AS current_users,
        count(*) FILTER (WHERE is_reference AND sampled) AS reference_rows,
        count(*) FILTER (WHERE NOT is_reference AND sampled) AS current_rows,
        least(reference_rows, current_rows) >= $min_rows AS large_enough
    FROM sides
    WHERE segment_value IS NOT NULL AND NOT isnan(segment_value)
    GROUP BY segment_column, segment_value
),
ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY segment_column, large_enough ORDER BY current_users DESC, segment_value
        ) AS size_rank
    FROM sized
)
SELECT
    * EXCLUDE (size_rank),
    large_enough AND size_rank <= $max_segments AS judged,
    (SELECT count(*) FROM features WHERE cohort_month = $cohort) AS cohort_users
FROM ranked;

-- Bin edges per judged segment: the deciles of each column among the segment's sampled reference
-- rows (as feature_bins.sql cuts the whole reference), so each segment is binned by its own
-- distribution and every bin holds about a tenth of its reference.
CREATE OR REPLACE TEMP TABLE drift_segment_edges AS
WITH sides AS (
    SELECT
        *,
        unnest($segment_columns) AS segment_column,
        unnest([*COLUMNS(lambda c: list_contains($segment_columns, c))]::DOUBLE[])
            AS segment_value
    FROM features
    WHERE cohort_month IN (SELECT unnest($reference_cohorts::DATE[]))
      AND hash(msno) <= $reference_hash_cut
)
SELECT
    segment_column,
    segment_value,
    quantile_disc(
        COLUMNS(lambda c: list_contains($columns, c))::DOUBLE,
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
FROM sides
SEMI JOIN (SELECT * FROM drift_segment_sizes WHERE judged) USING (segment_column, segment_value)
GROUP BY segment_column, segment_value;

-- One scan of both sides, grouped by segment: the wide aggregate of feature_bins.sql (rows,
-- missing rows, rows at or below each edge, or a histogram of a categorical column), with each
-- segment's own edges joined in. An edge the segment's reference lacks is +infinity. Only dates,
-- hash cuts and quoted column names go into the text.
SET VARIABLE drift_segment_counts_sql = (
    WITH names AS (
        SELECT
            unnest(range(1, len($columns) + 1)) AS i,
            unnest($columns) AS column_name
    ),
    quoted AS (
        SELECT
            i,
            list_contains($categorical, column_name) AS categorical,
            '"' || replace(column_name, '"', '""') || '"' AS q
        FROM names
    ),
    items AS (
        SELECT
            i,
            'struct_pack(i := ' || i || ', rows := count(*), missing := count_if(f.' || q
                || '::DOUBLE IS NULL OR isnan(f.' || q || '::DOUBLE)), '
                || CASE
                    WHEN categorical THEN
                        'at_or_below := NULL::BIGINT[], categories := histogram(f.' || q
                        || '::DOUBLE) FILTER (WHERE NOT isnan(f.' || q || '::DOUBLE)))'
                    ELSE
                        'at_or_below := ['
                        || array_to_string(
                            list_transform(
                                range(1, 10),
                                lambda j: 'count_if(f.' || q || '::DOUBLE <= coalesce(e.' || q
                                    || '[' || j || '], ''inf''::DOUBLE))'
                            ),
                            ', '
                        )
                        || '], categories := NULL::MAP(DOUBLE, UBIGINT))'
                END AS item
        FROM quoted
    ),
    segments AS (
        SELECT
            string_agg('''' || replace(c, '''', '''''') || '''', ', ' ORDER BY k) AS names,
            string_agg('"' || replace(c, '"', '""') || '"::DOUBLE', ', ' ORDER BY k) AS values
        FROM (
            SELECT
                unnest($segment_columns) AS c,
                unnest(range(1, len($segment_columns) + 1)) AS k
        )
    )
    SELECT
        'SELECT f.is_reference, segment_column, segment_value, ['
        || (SELECT string_agg(item, ', ' ORDER BY i) FROM items)
        || '] AS counts FROM (SELECT *, cohort_month <> ''' || $cohort::DATE::VARCHAR
        || '''::DATE AS is_reference, unnest([' || names || ']) AS segment_column, unnest(['
        || values || ']) AS segment_value FROM features WHERE (cohort_month IN ('
        || (
            SELECT coalesce(string_agg('''' || c::VARCHAR || '''::DATE', ', '), 'NULL')
            FROM (SELECT unnest($reference_cohorts::DATE[]) AS c)
        ) || ') AND hash(msno) <= ' || $reference_hash_cut::UBIGINT || '::UBIGINT) OR ('
        || 'cohort_month = ''' || $cohort::DATE::VARCHAR || '''::DATE AND hash(msno) <= '
        || $current_hash_cut::UBIGINT || '::UBIGINT)) AS f '
        || 'JOIN drift_segment_edges AS e USING (segment_column, segment_value) '
        || 'GROUP BY f.is_reference, segment_column, segment_value'
    FROM segments
);

CREATE OR REPLACE TEMP TABLE drift_bin_counts AS
WITH sides AS (
    SELECT is_reference, segment_column, segment_value, unnest(counts, recursive := true)
    FROM query(getvariable('drift_segment_counts_sql'))
),
numeric_bins AS (
    -- cumulative[j] rows at or below edge j - 1, from 0 to all present (feature_bins.sql).
    SELECT is_reference, segment_column, segment_value, i, b AS bin,
        cumulative[b + 2] - cumulative[b + 1] AS n
    FROM (
        SELECT *, [0] || at_or_below || [rows - missing] AS cumulative
        FROM sides
        WHERE at_or_below IS NOT NULL
    ), range(0, 10) AS bins(b)
),
category_bins AS (
    SELECT is_reference, segment_column, segment_value, i, entry.key AS bin, entry.value AS n
    FROM (
        SELECT is_reference, segment_column, segment_value, i,
            unnest(map_entries(categories)) AS entry
        FROM sides
    )
),
missing_bins AS (
    SELECT is_reference, segment_column, segment_value, i, NULL::DOUBLE AS bin, missing AS n
    FROM sides
),
all_bins AS (
    SELECT * FROM numeric_bins
    UNION ALL
    SELECT * FROM category_bins
    UNION ALL
    SELECT * FROM missing_bins
)
SELECT
    struct_pack(
        segment_column := segment_column,
        segment_value := segment_value,
        column_name := $columns[i]
    ) AS column_name,
    bin,
    coalesce(sum(n) FILTER (WHERE is_reference), 0)::BIGINT AS reference_count,
    coalesce(sum(n) FILTER (WHERE NOT is_reference), 0)::BIGINT AS current_count
FROM all_bins
GROUP BY ALL
HAVING sum(n) > 0;
