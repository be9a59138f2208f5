"""``make chaos`` (``python -m tests.chaos``): the whole loop for several Models while the
operator's HA pair is SIGKILLed at seeded instants, the API server restarts and
Prometheus goes down; then the invariants (see run.py and invariants.py)."""
