"""The served victim: `molleak serve` puts a victim behind HTTP with API keys, budgets, rate limits
and a query log (`app`, `keys`); `protocol` is what server and client (`molleak.victims.remote`) share.
"""
