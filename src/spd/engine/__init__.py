"""Training (Lightning) and evaluation."""
