"""ModelLoop: a Kubernetes operator for the continual-learning loop of ML models."""
