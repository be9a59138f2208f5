"""bench.scale runs the operator with what its image sets for the process."""

import re
from pathlib import Path

from bench.scale.__main__ import IMAGE_ENV

DOCKERFILE = Path(__file__).parents[3] / "Dockerfile"


def test_the_bench_sets_what_the_image_sets() -> None:
    final_stage = DOCKERFILE.read_text().split("\nFROM ")[-1]
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", final_stage.split("ENV ", 1)[1].split("\n#")[0]))
    env.pop("PATH")
    assert {k: v for k, v in env.items() if not k.startswith("PYTHON")} == IMAGE_ENV
