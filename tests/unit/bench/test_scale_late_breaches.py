"""When the breach phase times out, the harness says which Models were late and where
each stands, so that a stuck decision can be told from a slow machine."""

from bench.scale.__main__ import late_breaches

from modelloop.kube.rest import Obj

BREACH: Obj = {"type": "Healthy", "status": "False", "reason": "Breach", "message": "acc 0.7"}


def test_each_late_model_is_counted_under_what_it_lacks_with_its_conditions() -> None:
    conditions = {"m1": [BREACH], "m3": [], "m4": [BREACH]}
    told = late_breaches(
        ["m0", "m1", "m2", "m3", "m4"],
        breached={"m0": 1.0, "m1": 2.0},
        jobs={"m0": {"j0": 3.0}, "m4": {"j4": 4.0}},
        conditions_of=lambda name: conditions.get(name, []),
    ).splitlines()
    assert told == [
        "5 breaching: 2 seen in breach, 2 with a Job",
        "neither in breach nor with a Job: 2",
        "  m2: no conditions",
        "  m3: no conditions",
        "in breach, no Job: 1",
        "  m1: Healthy=False Breach: acc 0.7",
        "a Job, never seen in breach: 1",
        "  m4: Healthy=False Breach: acc 0.7",
    ]


def test_only_the_first_few_of_each_kind_are_read() -> None:
    read: list[str] = []

    def conditions_of(name: str) -> list[Obj]:
        read.append(name)
        return []

    told = late_breaches([f"m{i}" for i in range(20)], {}, {}, conditions_of, shown=3)
    assert read == ["m0", "m1", "m2"]
    assert told.splitlines()[1] == "neither in breach nor with a Job: 20"
