"""Performance layer: backtests of every registered model version on each newly labelled cohort."""
