"""The test tree itself: pytest imports test modules by their base name (the tiers are not
packages), so two files of one name in two tiers break the collection of a whole run."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
