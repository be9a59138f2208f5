"""The Kubernetes API edge: plain dicts in and out, one small client."""
