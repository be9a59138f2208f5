"""The manifest corpus gets the expected verdict from the pydantic models.

The integration tier sends the same corpus to a real API server, so both
sides are held to one verdict per manifest.
"""

import pytest
from tests.harness.corpus import CORPUS, CorpusCase, rule_messages

from modelloop.api.manifests import InvalidManifest, validate_manifest


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_pydantic_verdict(case: CorpusCase) -> None:
    if case.valid:
        validate_manifest(case.manifest)
        return
    with pytest.raises(InvalidManifest) as raised:
        validate_manifest(case.manifest)
    if case.message and any(case.message in rule for rule in rule_messages()):
        assert case.message in str(raised.value)


def test_corpus_has_an_invalid_case_for_every_rule() -> None:
    assert len(CORPUS) >= 20
    invalid = [c.message for c in CORPUS if not c.valid and c.message]
    uncovered = [rule for rule in rule_messages() if not any(m in rule for m in invalid)]
    assert uncovered == []
