"""Notifications: every Event the operator posts about a Model, sent to the receivers
that subscribed to its kind (generic JSON webhooks, Slack, Microsoft Teams) with the
numbers behind the decision. Pure rendering (``subscriptions``, ``evidence``,
``payload``) apart from delivery (``delivery``: queues, worker threads, retries) and
the wiring (``notifier``, ``settings``)."""
