"""Plumbing of the management API: configuration, pools, errors, tokens, serving."""
