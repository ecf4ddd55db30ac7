"""The management API: FastAPI backend of the ExaPG management UI."""
