"""Batch classification of backlog files: typed results, streaming writers, enqueueing into the store."""
