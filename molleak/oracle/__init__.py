"""Membership oracle: substructure and exact labels of candidates against a bank of molecules."""
