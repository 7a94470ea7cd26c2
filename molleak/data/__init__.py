"""Datasets: SMILES files, MOSES tiers and splits, graph featurisation."""
