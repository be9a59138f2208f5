"""Offline validation of candidate ModelVersions."""
