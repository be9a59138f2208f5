"""Retraining: triggers, training Jobs and their results."""
