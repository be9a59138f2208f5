"""Start the notifier at operator start-up, after ``start_workers`` (kopf runs startup
handlers in the order they were registered, and this module is imported after the
package's ``__init__``): every Event the operator posts about a Model from then on is
also sent to the receivers subscribed to its kind."""

from typing import Any

import kopf

from ..kube.events import set_sink
from ..notify.notifier import Notifier
from ..notify.settings import NotificationSettings
from .evaluation import operator_namespace


@kopf.on.startup()
async def start_notifier(*, memo: kopf.Memo, **_: Any) -> None:
    settings = (memo.get("options") or {}).get("notifications") or NotificationSettings()
    notifier = Notifier(memo["kube"], settings, operator_namespace(), memo["telemetry"].registry)
    notifier.start()
    set_sink(notifier.notify)
    memo["notifier"] = notifier


@kopf.on.cleanup()
async def stop_notifier(*, memo: kopf.Memo, **_: Any) -> None:
    set_sink(None)
    notifier: Notifier | None = memo.get("notifier")
    if notifier is not None:
        notifier.stop()
