"""Encoders, the query-only victim interface and checkpoints."""
