"""Feature layer: the point-in-time feature table, one partition per cohort month."""
