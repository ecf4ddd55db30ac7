"""ExaPG replication exporter: PostgreSQL replication metrics for Prometheus (port 9188)."""
