"""``make demo``: the continual-learning loop on a local control plane (loop.py), or the
operator observing an example Model on the cluster of KUBECONFIG (observe.py)."""
