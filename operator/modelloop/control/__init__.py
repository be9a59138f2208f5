"""Scheduling of reconciliations: one work queue for all objects."""
