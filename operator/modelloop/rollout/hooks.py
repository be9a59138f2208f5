"""Webhook gates: which hooks a rollout asks now, what it sends them, and what their
answers mean. Pure; ``hookcalls`` does the HTTP.

- ``pre-rollout`` hooks are asked before the canary's first weight is written; all must
  answer 2xx for the weight to be written.
- ``rollout`` hooks are asked at every analysis, beside the metrics.
- ``confirm-promotion`` hooks are asked once a canary has passed every step, and again
  at each pass while one says no: the promotion waits for all of them to say 2xx.

A non-2xx answer holds the step (``onFailure: hold``) or fails it (``fail``: a failed
analysis toward ``failureLimit``; a pre-rollout hook rolls back at once). No answer in
time, or no connection, is inconclusive — never a failure: the receiver's outage is
not evidence against the candidate.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..api.model import AnalysisRow, CanaryStatus, HookRecord, Webhook

NOT_ASKED = "not asked in this pass"


class HookOutcome(StrEnum):
    PASS = "pass"  # a 2xx answer
    FAIL = "fail"  # any other answer
    TIMEOUT = "timeout"  # no answer within the hook's timeout
    ERROR = "error"  # no connection, a bad URL, a Secret missing: not the hook's verdict


@dataclass(frozen=True)
class HookAnswer:
    name: str
    outcome: HookOutcome
    status: int | None = None  # the HTTP status, when there was an answer
    detail: str = ""  # the start of the answer's body, or why there was none

    def describe(self) -> str:
        if self.outcome in (HookOutcome.PASS, HookOutcome.FAIL):
            text = f"webhook {self.name} answered {self.status}"
        elif self.outcome == HookOutcome.TIMEOUT:
            text = f"webhook {self.name} did not answer in time"
        else:
            text = f"webhook {self.name} could not be asked"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True)
class HookVerdict:
    """What the answers of one kind of hook mean for the step."""

    failed: list[HookAnswer]  # non-2xx of hooks that fail the step
    held: list[HookAnswer]  # non-2xx of hooks that hold it
    unanswered: list[HookAnswer]  # timeouts, errors, hooks not asked: inconclusive

    @property
    def passed(self) -> bool:
        return not (self.failed or self.held or self.unanswered)

    def describe(self) -> str:
        return "; ".join(a.describe() for a in [*self.failed, *self.held, *self.unanswered])


def of_type(hooks: Iterable[Webhook], type_: str) -> list[Webhook]:
    return [h for h in hooks if h.type == type_]


def judge_hooks(hooks: Sequence[Webhook], answers: Mapping[str, HookAnswer]) -> HookVerdict:
    failed: list[HookAnswer] = []
    held: list[HookAnswer] = []
    unanswered: list[HookAnswer] = []
    for hook in hooks:
        answer = answers.get(hook.name) or HookAnswer(
            hook.name, HookOutcome.ERROR, None, "not asked"
        )
        if answer.outcome == HookOutcome.FAIL:
            always_holds = hook.type == "confirm-promotion"
            (held if always_holds or hook.on_failure == "hold" else failed).append(answer)
        elif answer.outcome != HookOutcome.PASS:
            unanswered.append(answer)
    return HookVerdict(failed, held, unanswered)


def payload(
    model: str,
    namespace: str,
    hook: Webhook,
    canary: CanaryStatus,
    stable: str | None,
    steps: int,
) -> dict[str, Any]:
    """What a hook is sent: the candidate, where its rollout stands, and its evidence (the
    last analysis, per metric and slice, with its numbers)."""
    return {
        "name": model,
        "namespace": namespace,
        "type": hook.type,
        "candidate": canary.version,
        "stable": stable,
        "step": canary.step + 1,
        "steps": steps,
        "weight": canary.weight,
        "metadata": dict(hook.metadata or {}),
        "analysis": [_row(r) for r in canary.analysis],
    }


def _row(row: AnalysisRow) -> dict[str, Any]:
    return row.model_dump(mode="json", by_alias=True, exclude_none=True)


def recorded(
    records: Sequence[HookRecord],
    hooks: Sequence[Webhook],
    answers: Mapping[str, HookAnswer],
    now: datetime,
) -> list[HookRecord]:
    """``status.canary.hooks``: the last answer of each hook, replaced by this pass's."""
    kinds = {h.name: h.type for h in hooks}
    kept = {r.name: r for r in records if r.name in kinds}
    for name, answer in answers.items():
        if name in kinds:
            kept[name] = HookRecord(
                name=name,
                type=kinds[name],
                outcome=answer.outcome.value,
                status_code=answer.status,
                message=answer.describe()[:512],
                time=now,
            )
    return [kept[h.name] for h in hooks if h.name in kept]
