-- Quality numbers of each month of daily listening rows in the window (stored rows;
-- the dedupe step counts the duplicates).
WITH rows AS (
    SELECT * FROM user_logs WHERE date >= $window_start AND date < $window_end
)
SELECT
    date_trunc('month', r.date)::DATE AS month,
    count(*) AS rows,
    count(*) FILTER (WHERE r.msno IS NULL OR r.msno = '') AS invalid_key_rows,
    count(*) FILTER (WHERE r.total_secs IS NULL) AS null_total_secs,
    count(*) FILTER (WHERE r.num_100 IS NULL) AS null_num_100,
    count(*) FILTER (WHERE r.num_unq IS NULL) AS null_num_unq,
    count(*) FILTER (WHERE r.total_secs < 0) AS range_negative_total_secs,
    count(*) FILTER (WHERE r.total_secs > 86400) AS range_absurd_total_secs,
    count(*) FILTER (WHERE least(r.num_25, r.num_50, r.num_75, r.num_985, r.num_100,
                                 r.num_unq) < 0) AS range_negative_counts,
    count(*) FILTER (WHERE r.num_unq > r.num_25 + r.num_50 + r.num_75 + r.num_985 + r.num_100)
        AS range_unique_above_plays,
    count(*) FILTER (WHERE m.msno IS NULL) AS unknown_user_rows
FROM rows r
LEFT JOIN (SELECT DISTINCT msno FROM members) m ON m.msno = r.msno
GROUP BY ALL
ORDER BY month;
