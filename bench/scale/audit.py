"""``python -m bench.scale.audit LOG [MODEL]``: what the operator asked of the API server,
from the audit log of ``python -m bench.scale --audit``.

The bench's figures count the operator's requests by verb and kind; the audit log shows
which writes they were and in what order. It answers "why does a new Model cost four
status patches?": printed are the operator's writes by verb, resource and answer, per
Model of the run, and, for one Model, each write in order with what each status patch
of the Model changed (the fields it set, the conditions whose status or reason moved).
"""

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]
WRITES = ("create", "update", "patch", "delete")
OPERATOR = "system:serviceaccount:modelloop-system:modelloop"


def records(path: Path) -> Iterator[Record]:
    """The log's requests in the order they were answered."""
    with path.open() as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _by(record: Record, user: str) -> bool:
    return bool(record.get("user", {}).get("username") == user)


def _what(record: Record) -> str:
    ref = record.get("objectRef") or {}
    sub = ref.get("subresource")
    return f"{record['verb']} {ref.get('resource', '?')}{'/' + sub if sub else ''}"


def _code(record: Record) -> int:
    return int((record.get("responseStatus") or {}).get("code") or 0)


def models_created(log: Iterable[Record]) -> int:
    """How many Models were created (by anyone) in the run."""
    return len(
        {
            (r.get("objectRef") or {}).get("name")
            for r in log
            if r["verb"] == "create" and (r.get("objectRef") or {}).get("resource") == "models"
        }
    )


def writes(log: Iterable[Record], user: str = OPERATOR) -> Counter[tuple[str, int]]:
    """The user's writes by what they were ("patch models/status") and the answer's code."""
    return Counter((_what(r), _code(r)) for r in log if r["verb"] in WRITES and _by(r, user))


@dataclass(frozen=True)
class Step:
    """One write of the timeline; ``change`` tells what a status patch of a Model set."""

    at: str
    what: str
    name: str
    code: int
    change: str = ""


def _belongs(name: str, model: str) -> bool:
    """The Model's own objects, its children (``MODEL-…``) and its Events (``MODEL.…``)."""
    return name == model or name.startswith((f"{model}-", f"{model}."))


def timeline(log: Iterable[Record], model: str, user: str = OPERATOR) -> list[Step]:
    """The user's writes to one Model and its objects, in order, each status patch of
    the Model told by the fields it set and the conditions it moved."""
    held: dict[str, tuple[str, str]] = {}  # condition type -> (status, reason) as written
    steps = []
    mine = [r for r in log if r["verb"] in WRITES and _by(r, user)]
    for record in sorted(mine, key=lambda r: str(r.get("requestReceivedTimestamp"))):
        ref = record.get("objectRef") or {}
        name = str(ref.get("name") or "")
        if not _belongs(name, model):
            continue
        change = ""
        body = record.get("requestObject")
        if ref.get("resource") == "models" and isinstance(body, dict) and "status" in body:
            status = body.get("status") or {}
            fields = sorted(k for k in status if k != "conditions")
            moved = []
            for condition in status.get("conditions") or []:
                now = (condition.get("status"), condition.get("reason"))
                if held.get(condition["type"]) != now:
                    moved.append(f"{condition['type']}={now[0]} ({now[1]})")
                held[condition["type"]] = now
            change = (
                "; ".join(
                    part
                    for part in (
                        f"sets {', '.join(fields)}" if fields else "",
                        f"moves {', '.join(moved)}" if moved else "",
                    )
                    if part
                )
                or "moves no condition (observedGeneration, messages or times only)"
            )
        at = str(record.get("requestReceivedTimestamp", ""))[11:23]
        steps.append(Step(at, _what(record), name, _code(record), change))
    return steps


def render(log: list[Record], model: str | None, user: str = OPERATOR) -> str:
    models = models_created(log)
    counted = writes(log, user)
    lines = [f"{user}: {sum(counted.values())} writes, {models} Models created"]
    lines.append(f"{'per Model':>10}  {'count':>6}  request (answer)")
    for (what, code), count in counted.most_common():
        lines.append(f"{count / max(models, 1):>10.2f}  {count:>6}  {what} ({code})")
    if model is not None:
        lines.append(f"\n{model}, in order:")
        for step in timeline(log, model, user):
            told = f"  {step.change}" if step.change else ""
            lines.append(f"{step.at}  {step.what} {step.name} ({step.code}){told}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale.audit", description=__doc__)
    parser.add_argument("log", type=Path, help="the API server's audit.log")
    parser.add_argument("model", nargs="?", help="a Model whose writes to show in order")
    parser.add_argument("--user", default=OPERATOR, help=f"whose writes (default {OPERATOR})")
    args = parser.parse_args(argv)
    print(render(list(records(args.log)), args.model, args.user))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
