"""Plans: the audit, the bench suites, the canary grid and the sweep, run by one cell runner."""
