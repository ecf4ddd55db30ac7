"""Thin, typed drivers around the PostgreSQL binaries and connections."""
