"""Scores over a candidate pool: Eq. 1, the learned adapter, baselines, priors, calibrated."""
