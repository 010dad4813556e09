-- Per feature column, how many reference and current rows fall in each bin (drift_bin_counts).
-- $columns lists the compared columns in the order of the features table (COLUMNS(...) keeps that
-- order, so list position i names the column). The reference is the champion's complete training
-- cohorts, thinned by a hash of msno to about the share $reference_hash_cut keeps; the current side
-- is the whole cohort $cohort. Rows are read from the table $source: features, or a slice of it
-- with the same columns (new_members.sql). Bins are those of drift_macros.sql: a numeric value's bin is the
-- number of the reference's deciles strictly below it, a category its own bin, a missing value
-- (NULL or NaN) the bin NULL.

-- Bin edges: the reference's deciles of each column, from a hash sample ($edge_hash_cut). A column
-- the reference holds no value of gets edges at +infinity: all its values share bin 0.
CREATE OR REPLACE TEMP TABLE drift_edges AS
WITH deciles AS (
    SELECT quantile_disc(
        COLUMNS(lambda c: list_contains($columns, c))::DOUBLE,
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    FROM query_table($source)
    WHERE cohort_month IN (SELECT unnest($reference_cohorts::DATE[]))
      AND hash(msno) <= $edge_hash_cut
),
by_column AS (
    SELECT unnest(range(1, len($columns) + 1)) AS i, unnest([*COLUMNS(*)]) AS edges
    FROM deciles
)
SELECT
    i,
    $columns[i] AS column_name,
    list_contains($categorical, $columns[i]) AS categorical,
    list_transform(range(1, 10), lambda j: coalesce(edges[j], 'inf'::DOUBLE)) AS edges
FROM by_column;

-- One scan per side, whatever the number of columns: DuckDB writes the wide aggregate itself
-- (one count per column and edge, or a histogram of a categorical column) from drift_edges, and
-- runs it below. Per side and column it returns the rows, the missing ones, and the rows at or
-- below each edge (numeric) or per category. Only dates, hash cuts, quoted column names and the
-- edges (as exact decimal text) go into the text.
SET VARIABLE drift_counts_sql = (
    WITH quoted AS (
        SELECT
            i,
            categorical,
            edges,
            '"' || replace(column_name, '"', '""') || '"::DOUBLE' AS v
        FROM drift_edges
    ),
    items AS (
        SELECT
            i,
            'struct_pack(i := ' || i || ', rows := count(*), missing := count_if(' || v
                || ' IS NULL OR isnan(' || v || ')), '
                || CASE
                    WHEN categorical THEN
                        'at_or_below := NULL::BIGINT[], categories := histogram(' || v
                        || ') FILTER (WHERE NOT isnan(' || v || ')))'
                    ELSE
                        'at_or_below := ['
                        || array_to_string(
                            list_transform(
                                edges,
                                lambda e: 'count_if(' || v || ' <= ''' || e::VARCHAR
                                    || '''::DOUBLE)'
                            ),
                            ', '
                        )
                        || '], categories := NULL::MAP(DOUBLE, UBIGINT))'
                END AS item
        FROM quoted
    ),
    aggregates AS (SELECT '[' || string_agg(item, ', ' ORDER BY i) || ']' AS list FROM items)
    SELECT
        'SELECT TRUE AS is_reference, ' || list || ' AS counts FROM '
        || '"' || replace($source, '"', '""') || '" '
        || 'WHERE cohort_month IN (' || (
            SELECT coalesce(string_agg('''' || c::VARCHAR || '''::DATE', ', '), 'NULL')
            FROM (SELECT unnest($reference_cohorts::DATE[]) AS c)
        ) || ') AND hash(msno) <= ' || $reference_hash_cut::UBIGINT || '::UBIGINT '
        || 'UNION ALL SELECT FALSE, ' || list || ' FROM '
        || '"' || replace($source, '"', '""') || '" '
        || 'WHERE cohort_month = ''' || $cohort::DATE::VARCHAR || '''::DATE'
    FROM aggregates
);

CREATE OR REPLACE TEMP TABLE drift_bin_counts AS
WITH sides AS (
    SELECT is_reference, unnest(counts, recursive := true)
    FROM query(getvariable('drift_counts_sql'))
),
numeric_bins AS (
    -- cumulative[j] rows at or below edge j - 1, from 0 to all present: bin b holds the rows
    -- between two consecutive entries.
    SELECT is_reference, i, b AS bin, cumulative[b + 2] - cumulative[b + 1] AS n
    FROM (
        SELECT *, [0] || at_or_below || [rows - missing] AS cumulative
        FROM sides
        WHERE at_or_below IS NOT NULL
    ), range(0, 10) AS bins(b)
),
category_bins AS (
    SELECT is_reference, i, entry.key AS bin, entry.value AS n
    FROM (SELECT is_reference, i, unnest(map_entries(categories)) AS entry FROM sides)
),
missing_bins AS (
    SELECT is_reference, i, NULL::DOUBLE AS bin, missing AS n FROM sides
),
all_bins AS (
    SELECT * FROM numeric_bins
    UNION ALL
    SELECT * FROM category_bins
    UNION ALL
    SELECT * FROM missing_bins
)
SELECT
    e.column_name,
    b.bin,
    coalesce(sum(b.n) FILTER (WHERE b.is_reference), 0)::BIGINT AS reference_count,
    coalesce(sum(b.n) FILTER (WHERE NOT b.is_reference), 0)::BIGINT AS current_count
FROM all_bins AS b
JOIN drift_edges AS e USING (i)
GROUP BY ALL
HAVING sum(b.n) > 0;
