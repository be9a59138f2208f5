"""The feedback service: predictions and their late labels joined per model, version and
slice attributes, exposed on /metrics for the evaluation (``modelloop feedback``)."""
