"""Data functions of the management API: SQL only, keyword-only arguments, no HTTP."""
