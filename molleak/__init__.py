"""molleak: audit molecular pre-trained GNNs for training-data leakage."""

__version__ = "0.1.0"
