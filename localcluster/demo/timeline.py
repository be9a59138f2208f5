"""What happened in the demo, in order: the operator's Events as they appear, and what
the harness did. Printed as it goes; kept for the summary and the plot."""

import threading
import time
from dataclasses import dataclass

from modelloop.kube.events import COMPONENT
from modelloop.kube.rest import EVENTS, Kube


@dataclass(frozen=True)
class Mark:
    at: float  # seconds since the demo's start
    source: str  # "operator" for its Events; else the part of the harness that spoke
    reason: str
    message: str


class Timeline:
    def __init__(self) -> None:
        self.start = time.time()
        self._marks: list[Mark] = []
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def say(self, source: str, message: str, reason: str = "") -> Mark:
        mark = Mark(time.time() - self.start, source, reason, message)
        with self._lock:
            self._marks.append(mark)
        label = f"{source} {reason}".strip()
        print(f"[{mark.at:6.1f}s] {label:<28} {message}", flush=True)
        return mark

    def marks(self, reason: str | None = None) -> list[Mark]:
        with self._lock:
            return [m for m in self._marks if reason is None or m.reason == reason]

    def first(self, reason: str) -> Mark | None:
        return next(iter(self.marks(reason)), None)

    def follow(self, kube: Kube, namespace: str) -> None:
        """Says each Event of the operator's not said yet (names sort in creation order);
        the controllers' Events (pods scheduled, replica sets scaled) are left out."""
        for event in sorted(kube.list(EVENTS, namespace), key=lambda e: e["metadata"]["name"]):
            uid = event["metadata"]["uid"]
            if uid in self._seen or event.get("reportingComponent") != COMPONENT:
                continue
            self._seen.add(uid)
            involved = event["involvedObject"]
            self.say(
                "operator",
                f"{involved['kind']}/{involved['name']}: {event['message']}",
                event["reason"],
            )
