"""Search over the candidate space under a query budget: the extraction policy network."""
