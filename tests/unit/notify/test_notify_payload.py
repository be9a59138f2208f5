"""The body each kind of receiver gets, exactly."""

from typing import Any

from modelloop.notify.payload import MAX_FACTS, facts, notification, render

EVENT: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "fraud.18a2b3c4d5e6f708", "namespace": "risk"},
    "involvedObject": {
        "apiVersion": "modelloop.dev/v1alpha1",
        "kind": "Model",
        "name": "fraud",
        "namespace": "risk",
        "uid": "6d1c0b4e-0000-4000-8000-000000000001",
        "resourceVersion": "812",
    },
    "reason": "Breach",
    "message": "precision on slice us of fraud-v1 = 0.5 (100 samples): 0.5 < min 0.8",
    "type": "Warning",
    "firstTimestamp": "2026-05-01T10:00:05Z",
    "lastTimestamp": "2026-05-01T10:00:05Z",
    "count": 1,
}
VERDICT = {
    "kind": "metric",
    "metric": "precision",
    "slice": "us",
    "version": "fraud-v1",
    "verdict": "breach",
    "since": "2026-05-01T10:00:05Z",
    "value": 0.5,
    "samples": 100.0,
    "reason": "0.5 < min 0.8",
    "objective": {"min": 0.8},
}
BREACH = notification("breach", EVENT, {"verdicts": [VERDICT]})
TITLE = "Breach: risk/fraud"
KUBECTL = "kubectl get model -n risk fraud"
FACT = ("precision on us of fraud-v1", "0.5; 100 samples; min 0.8: breach (0.5 < min 0.8)")


def test_webhook_is_the_event_the_object_and_the_evidence_as_json() -> None:
    assert render("webhook", BREACH) == {
        "kind": "breach",
        "event": {
            "name": "fraud.18a2b3c4d5e6f708",
            "namespace": "risk",
            "reason": "Breach",
            "type": "Warning",
            "message": EVENT["message"],
            "time": "2026-05-01T10:00:05Z",
        },
        "object": {
            "apiVersion": "modelloop.dev/v1alpha1",
            "kind": "Model",
            "namespace": "risk",
            "name": "fraud",
            "uid": "6d1c0b4e-0000-4000-8000-000000000001",
            "kubectl": KUBECTL,
        },
        "evidence": {"verdicts": [VERDICT]},
    }


def test_slack_is_a_fallback_text_and_blocks() -> None:
    assert render("slack", BREACH) == {
        "text": f"{TITLE}: {EVENT['message'].replace('<', '&lt;')}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": TITLE}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": EVENT["message"].replace("<", "&lt;")},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{FACT[0]}*: {FACT[1].replace('<', '&lt;')}"},
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"Warning · 2026-05-01T10:00:05Z · `{KUBECTL}`"}
                ],
            },
        ],
    }


def test_teams_is_a_message_with_one_adaptive_card() -> None:
    assert render("teams", BREACH) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": TITLE,
                            "weight": "Bolder",
                            "size": "Medium",
                            "color": "Attention",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": EVENT["message"], "wrap": True},
                        {"type": "FactSet", "facts": [{"title": FACT[0], "value": FACT[1]}]},
                        {
                            "type": "TextBlock",
                            "text": f"Warning · 2026-05-01T10:00:05Z · {KUBECTL}",
                            "isSubtle": True,
                            "size": "Small",
                            "wrap": True,
                        },
                    ],
                },
            }
        ],
    }


def test_an_event_without_evidence_has_no_numbers_block() -> None:
    told = notification("trainingStarted", EVENT | {"type": "Normal"}, None)
    assert render("webhook", told)["evidence"] == {}
    assert [b["type"] for b in render("slack", told)["blocks"]] == ["header", "section", "context"]
    card = render("teams", told)["attachments"][0]["content"]
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "TextBlock"]
    assert card["body"][0]["color"] == "Accent"


ANALYSIS = {
    "metric": "precision",
    "slice": "us",
    "outcome": "fail",
    "stable": 0.95,
    "canary": 0.6,
    "stableSamples": 900.0,
    "canarySamples": 100.0,
    "pValue": 0.000123,
    "code": "SignificantRegression",
}
GATE = {
    "gate": "gates[0]",
    "metric": "precision",
    "slice": "us",
    "candidate": 0.9,
    "champion": 0.95,
    "limit": 0.02,
    "pValue": 0.04,
    "passed": False,
    "code": "BeyondTolerance",
}
TRAINING = {
    "sequence": 2,
    "job": "fraud-train-2",
    "trigger": {"kind": "breach", "reason": "precision on slice us = 0.5"},
    "outcome": "Succeeded",
    "version": "fraud-v2",
}


def test_the_numbers_of_each_kind_of_evidence_as_chat_lines() -> None:
    canary = {"version": "fraud-v2", "weight": 10, "step": 0, "phase": "RollingBack"}
    assert facts({"canary": canary, "analysis": [ANALYSIS]}) == [
        ("canary", "fraud-v2 at 10% (step 1)"),
        (
            "precision on us",
            "canary 0.6 vs stable 0.95 (100 vs 900 samples), p=0.000123: fail "
            "(SignificantRegression)",
        ),
    ]
    assert facts({"version": "fraud-v2", "gates": [GATE]}) == [
        (
            "precision on us (gates[0])",
            "candidate 0.9 vs champion 0.95, limit 0.02, p=0.04: failed (BeyondTolerance)",
        )
    ]
    assert facts({"training": TRAINING}) == [
        (
            "training 2",
            "Job fraud-train-2, breach trigger: precision on slice us = 0.5; Succeeded: fraud-v2",
        )
    ]
    drift: dict[str, Any] = {
        "kind": "drift",
        "metric": "amount",
        "slice": "all",
        "version": "fraud-v1",
        "verdict": "breach",
        "value": 0.41,
        "coverage": 0.5,
        "test": "psi",
        "threshold": 0.2,
    }
    assert facts({"verdicts": [drift]}) == [
        ("drift amount on all of fraud-v1", "0.41; labels 50%; psi threshold 0.2: breach")
    ]


def test_a_long_list_ends_with_how_many_more() -> None:
    rows = [ANALYSIS | {"slice": f"s{i}"} for i in range(30)]
    canary = {"version": "fraud-v2", "weight": 10, "step": 0}
    lines = facts({"canary": canary, "analysis": rows, "omitted": 5})
    assert len(lines) == MAX_FACTS
    assert lines[-1] == ("…", f"and {35 - (MAX_FACTS - 2)} more")
