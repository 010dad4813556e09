"""Monitoring layer: drift of each cohort's features against the champion's training data."""
