"""Evaluation: the only code that reads the private set. Metrics, attribution and reports."""
