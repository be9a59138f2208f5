"""The manifest corpus gets the expected verdict from the pydantic models.

The integration tier sends the same corpus to a real API server, so both
sides are held to one verdict per manifest, with the same field named.
"""

import pytest
from tests.harness.corpus import CORPUS, CorpusCase, Rule, rules, schema_path, value_at

from modelloop.api.durations import milliseconds
from modelloop.api.manifests import InvalidManifest, validate_manifest


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_pydantic_verdict(case: CorpusCase) -> None:
    if case.valid:
        validate_manifest(case.manifest)
        return
    assert case.message, f"{case.name}: header '# message:' missing"
    assert case.field, f"{case.name}: header '# field:' missing"
    with pytest.raises(InvalidManifest) as raised:
        validate_manifest(case.manifest)
    assert case.message in str(raised.value)
    assert case.field in str(raised.value), f"the message should name {case.field}"


def test_corpus_has_an_invalid_case_for_every_rule() -> None:
    invalid = [
        (schema_path(c.field or ""), c.message or "") for c in CORPUS if not c.valid and c.message
    ]
    uncovered = [
        rule
        for rule in rules()
        if not any(
            message in rule.message and (rule.path is None or field == rule.path)
            for field, message in invalid
        )
    ]
    assert uncovered == []


DURATION_RULES = sorted((r for r in rules() if r.bounds), key=lambda r: r.path or "")


@pytest.mark.parametrize("rule", DURATION_RULES, ids=lambda r: r.path)
def test_every_duration_bound_has_a_case_on_each_side(rule: Rule) -> None:
    assert rule.bounds is not None
    lowest, highest = rule.bounds
    judged = [
        milliseconds(value_at(c.manifest, c.field))
        for c in CORPUS
        if not c.valid and c.field and schema_path(c.field) == rule.path
        if c.message and c.message in rule.message
    ]
    assert any(ms > highest for ms in judged), f"no case of {rule.path} above its maximum"
    assert lowest == 0 or any(ms < lowest for ms in judged), f"no case of {rule.path} below"
