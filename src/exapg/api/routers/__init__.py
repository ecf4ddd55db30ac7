"""One router per area; routes stay thin and call data functions."""
