"""Scoring layer: churn probabilities, action buckets and reasons for each cohort."""
