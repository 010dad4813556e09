"""The model kernel: what every stage needs of a churn model, and nothing of any stage.

The label, the feature matrix a booster reads, its probability, the as-is rule's flags, the
classification metrics and their (paired) bootstrap intervals. Training, scoring, monitoring and
performance import these; this package imports none of them, so a number means the same thing
wherever it is computed.
"""
