"""A local cluster without a container runtime: the control plane built from source,
Prometheus, kwok's node, and stand-ins for the kubelet's work (training pods, model
servers, traffic). The demo runs on it and the tests build on it."""
