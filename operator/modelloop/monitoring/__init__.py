"""Evaluation: PromQL per slice, verdicts, drift, the evaluation loop."""
