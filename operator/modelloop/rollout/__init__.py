"""Progressive delivery: canary analysis, and (next) the rollout state machine."""
