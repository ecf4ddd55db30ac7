"""ExaPG: PostgreSQL as an analytics platform, stood up and operated by one tool."""

__version__ = "0.1.0"
