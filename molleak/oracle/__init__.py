"""Membership oracle: substructure and exact labels of candidates against a bank of molecules."""

from molleak.oracle.bank import Bank, default_cache_dir, exact_key
from molleak.oracle.labels import Labels, clear_memory_cache, label

__all__ = ["Bank", "Labels", "clear_memory_cache", "default_cache_dir", "exact_key", "label"]
