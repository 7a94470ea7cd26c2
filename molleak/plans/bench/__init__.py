"""Benchmark suites that reproduce the paper's tables with controls."""
