"""Candidate space: vocabularies mined from the auxiliary set, assembly and enumeration."""
