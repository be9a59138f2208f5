"""The operator's own notification settings: receivers told of every Model's decisions,
and how deliveries are made. The file (``--notifications`` or
``$MODELLOOP_NOTIFICATIONS``; the chart writes it from its ``notifications`` values)::

    receivers:                      # as a Model's spec.notifications; their Secrets live
      - name: platform-slack        # in the operator's namespace
        type: slack
        urlFrom: {secretKeyRef: {name: platform-slack, key: url}}
        events: [breach, rejected, rolledBack, fault]
    timeout: 5s                     # per attempt
    attempts: 3                     # per notification
    backoff: 1s                     # before the second attempt, doubled before each next
    queueSize: 100                  # per receiver; a full queue drops its oldest
    workers: 4                      # receivers delivered to at once
"""

import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field

from ..api.base import ApiModel, list_map
from ..api.durations import Duration, Within
from ..api.model import NotificationReceiver


class NotificationSettings(ApiModel):
    receivers: list[NotificationReceiver] = Field(
        default_factory=list, **list_map("name", max_items=64)
    )
    timeout: Annotated[Duration, Within("100ms", "1m")] = Duration("5s")
    attempts: int = Field(default=3, ge=1, le=10)
    backoff: Annotated[Duration, Within("10ms", "10m")] = Duration("1s")
    queue_size: int = Field(default=100, ge=1, le=10000)
    workers: int = Field(default=4, ge=1, le=64)


def load_settings(path: str | None) -> NotificationSettings:
    """The settings; a broken file is an error at start-up, not later."""
    path = path or os.environ.get("MODELLOOP_NOTIFICATIONS")
    if not path:
        return NotificationSettings()
    return NotificationSettings.model_validate(yaml.safe_load(Path(path).read_text()) or {})
