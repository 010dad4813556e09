"""Reports for the people who act on the scores: the weekly at-risk list (DESIGN §8)."""
