"""Scores, judges, the held-out evaluation, validation metrics, mode reports and plots."""
