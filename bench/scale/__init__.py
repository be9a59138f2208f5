"""The scale harness (``make bench-scale``): the whole operator on the local control plane
with N Models, measured at steady state and during a burst of spec edits."""
