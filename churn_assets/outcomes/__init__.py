"""Business outcome: did acting on the scores keep users, measured against a held-out control."""
