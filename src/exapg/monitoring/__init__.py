"""Monitoring of a stack: Prometheus and postgres_exporter for the local runtime."""
