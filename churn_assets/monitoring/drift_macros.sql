-- The bin of one value, shared by the feature and the score statistics. Numeric values fall into
-- the reference's deciles: the bin is the number of edges strictly below the value (0..9), so a
-- value equal to an edge joins the lower bin and repeated edges (a column with few distinct values)
-- leave empty bins, which add nothing to PSI. A category is its own bin; a missing value (NULL or
-- NaN) is a bin of its own, NULL.
CREATE OR REPLACE TEMP MACRO drift_bin(value, categorical, e1, e2, e3, e4, e5, e6, e7, e8, e9) AS
    CASE
        WHEN value IS NULL OR isnan(value) THEN NULL
        WHEN categorical THEN value
        ELSE (value > e1)::INTEGER + (value > e2)::INTEGER + (value > e3)::INTEGER
            + (value > e4)::INTEGER + (value > e5)::INTEGER + (value > e6)::INTEGER
            + (value > e7)::INTEGER + (value > e8)::INTEGER + (value > e9)::INTEGER
    END;
