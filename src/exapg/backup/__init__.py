"""Backups with point-in-time recovery: pgBackRest driven (`pgbackrest`), the records the
metrics read (`records`). Nothing here knows a stack: callers pass paths and connections."""
