"""What a notification says, and its body for each kind of receiver. Pure.

- ``webhook``: the notification as JSON — the Event, a reference to the Model, the
  evidence as structured numbers (see ``evidence``).
- ``slack``: a Slack incoming webhook message: ``text`` (the fallback shown in
  notifications) and ``blocks`` (a header, the Event's message, the numbers, the
  kubectl command).
- ``teams``: a Microsoft Teams *Workflows* webhook ("Send webhook alerts to a channel"):
  a message with one Adaptive Card attachment. The Office 365 connectors' MessageCard
  webhooks are retired; Workflows webhooks take Adaptive Cards only.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..api.model import NotificationEvent

Obj = dict[str, Any]
ReceiverType = Literal["webhook", "slack", "teams"]
MAX_FACTS = 10  # lines of numbers in a chat message; the webhook carries them all
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


@dataclass(frozen=True)
class Notification:
    kind: NotificationEvent
    event: Obj  # name, namespace, reason, type, message, time
    object: Obj  # apiVersion, kind, namespace, name, uid, kubectl
    evidence: Obj


def notification(
    kind: NotificationEvent, event: Mapping[str, Any], evidence: Mapping[str, Any] | None
) -> Notification:
    """The notification of a core/v1 Event as ``kube.events`` posts it."""
    meta, involved = event["metadata"], event["involvedObject"]
    return Notification(
        kind,
        {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "reason": event["reason"],
            "type": event["type"],
            "message": event["message"],
            "time": event["firstTimestamp"],
        },
        {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "namespace": involved["namespace"],
            "name": involved["name"],
            "uid": involved.get("uid"),
            "kubectl": f"kubectl get {involved['kind'].lower()} -n {involved['namespace']} "
            f"{involved['name']}",
        },
        dict(evidence or {}),
    )


def webhook(n: Notification) -> Obj:
    return {"kind": n.kind, "event": n.event, "object": n.object, "evidence": n.evidence}


def _number(value: Any, spec: str = ".4g") -> str:
    return format(value, spec) if isinstance(value, int | float) else "?"


def _objective(bound: Mapping[str, Any]) -> str:
    if "threshold" in bound:
        return f"{bound['test']} threshold {_number(bound['threshold'])}"
    objective = bound.get("objective") or {}
    return ", ".join(f"{k} {_number(v)}" for k, v in objective.items())


def _verdict_fact(v: Mapping[str, Any]) -> tuple[str, str]:
    what = f"drift {v['metric']}" if v.get("kind") == "drift" else v["metric"]
    numbers = [_number(v["value"])] if "value" in v else []
    if "samples" in v:
        numbers.append(f"{_number(v['samples'], '.0f')} samples")
    if "coverage" in v:
        numbers.append(f"labels {_number(v['coverage'], '.0%')}")
    bound = _objective(v)
    if bound:
        numbers.append(bound)
    reason = f" ({v['reason']})" if v.get("reason") else ""
    return (
        f"{what} on {v['slice']} of {v['version']}",
        f"{'; '.join(numbers)}: {v['verdict']}{reason}",
    )


def _analysis_fact(r: Mapping[str, Any]) -> tuple[str, str]:
    text = f"canary {_number(r.get('canary'))} vs stable {_number(r.get('stable'))}"
    if "canarySamples" in r or "stableSamples" in r:
        text += (
            f" ({_number(r.get('canarySamples'), '.0f')} vs "
            f"{_number(r.get('stableSamples'), '.0f')} samples)"
        )
    if "pValue" in r:
        text += f", p={_number(r['pValue'], '.3g')}"
    code = f" ({r['code']})" if r.get("code") else ""
    return f"{r['metric']} on {r['slice']}", f"{text}: {r['outcome']}{code}"


def _gate_fact(g: Mapping[str, Any]) -> tuple[str, str]:
    text = f"candidate {_number(g.get('candidate'))} vs champion {_number(g.get('champion'))}"
    if "limit" in g:
        text += f", limit {_number(g['limit'])}"
    if "pValue" in g:
        text += f", p={_number(g['pValue'], '.3g')}"
    code = f" ({g['code']})" if g.get("code") else ""
    verdict = "passed" if g["passed"] else "failed"
    return f"{g['metric']} on {g['slice']} ({g.get('gate', 'default')})", f"{text}: {verdict}{code}"


def _training_fact(t: Mapping[str, Any]) -> tuple[str, str]:
    trigger = t.get("trigger") or {}
    text = f"Job {t['job']}, {trigger.get('kind', '?')} trigger"
    if trigger.get("reason"):
        text += f": {trigger['reason']}"
    if t.get("outcome"):
        text += f"; {t['outcome']}"
        text += f": {t['version']}" if t.get("version") else f": {t.get('message') or ''}"
    return f"training {t['sequence']}", text


ROWS: dict[str, Callable[[Mapping[str, Any]], tuple[str, str]]] = {
    "verdicts": _verdict_fact,
    "analysis": _analysis_fact,
    "gates": _gate_fact,
}


def facts(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The evidence as (title, numbers) lines for a chat message, at most MAX_FACTS."""
    lines: list[tuple[str, str]] = []
    if "canary" in evidence:
        c = evidence["canary"]
        step = c.get("step", 0) + 1
        lines.append(("canary", f"{c['version']} at {c.get('weight', 0)}% (step {step})"))
    if "training" in evidence:
        lines.append(_training_fact(evidence["training"]))
    rows: list[tuple[str, str]] = []
    for key, fact in ROWS.items():
        rows += [fact(row) for row in evidence.get(key) or []]
    room, total = MAX_FACTS - len(lines), len(rows) + int(evidence.get("omitted", 0))
    if total > room:
        rows = [*rows[: room - 1], ("…", f"and {total - room + 1} more")]
    return lines + rows


def _title(n: Notification) -> str:
    return f"{n.event['reason']}: {n.object['namespace']}/{n.object['name']}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(n: Notification) -> Obj:
    blocks: list[Obj] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(n)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(n.event["message"])}},
    ]
    lines = [f"*{_slack_escape(t)}*: {_slack_escape(v)}" for t, v in facts(n.evidence)]
    if lines:
        text = "\n".join(lines)[:3000]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    context = f"{n.event['type']} · {n.event['time']} · `{n.object['kubectl']}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _slack_escape(f"{_title(n)}: {n.event['message']}"), "blocks": blocks}


def teams(n: Notification) -> Obj:
    color = "Attention" if n.event["type"] == "Warning" else "Accent"
    body: list[Obj] = [
        {
            "type": "TextBlock",
            "text": _title(n),
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
            "wrap": True,
        },
        {"type": "TextBlock", "text": n.event["message"], "wrap": True},
    ]
    lines = facts(n.evidence)
    if lines:
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in lines]})
    body.append(
        {
            "type": "TextBlock",
            "text": f"{n.event['type']} · {n.event['time']} · {n.object['kubectl']}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card = {"$schema": ADAPTIVE_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    attachment = {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


RENDER: dict[ReceiverType, Callable[[Notification], Obj]] = {
    "webhook": webhook,
    "slack": slack,
    "teams": teams,
}


def render(type_: ReceiverType, n: Notification) -> Obj:
    return RENDER[type_](n)
