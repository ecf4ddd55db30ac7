"""Runtimes: where and how the stack's services run (local processes or Docker Compose)."""
