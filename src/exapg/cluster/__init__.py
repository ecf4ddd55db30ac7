"""Cluster shape (coordinator, workers, standbys) and what can be learnt about it."""
