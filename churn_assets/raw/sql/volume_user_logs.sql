-- Rows per loaded month before $window_end, for the volume-stability check.
SELECT date_trunc('month', date)::DATE AS month, count(*) AS rows
FROM user_logs
WHERE date < $window_end
GROUP BY ALL
ORDER BY month;
