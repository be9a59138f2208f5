"""Serving the stable version: which version serves, and the objects that serve it."""
