"""What the feedback service ingests and joins: predictions, labels, and a prediction
with its label.

The wire names are camelCase like the rest of ModelLoop's API. Times are Unix seconds
(float). A prediction carries the attributes the slices are made of; which of them
become metric labels is the service's configuration, not the sender's.
"""

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=63)]
# A class (classification) or a value (regression).
Outcome = float | Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Record(BaseModel):
    # No NaN or infinity (JSON has neither, Python's parsers accept both): a time or an
    # error of inf would poison every sum it enters.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )


class Prediction(Record):
    """One prediction, identified by ``id`` (the join key of its label)."""

    id: Id
    model: Name
    version: Name
    time: float = Field(ge=0, description="When it was made, Unix seconds.")
    attributes: dict[str, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, max_length=32, description="What slices are made of."
    )
    predicted: Outcome = Field(description="The predicted class or value.")
    score: float | None = Field(
        default=None, ge=0, le=1, description="The positive class's probability."
    )


class Label(Record):
    """The ground truth of the prediction with the same ``id``."""

    id: Id
    label: Outcome
    time: float = Field(ge=0, description="When the truth became known, Unix seconds.")


@dataclass(frozen=True)
class Joined:
    """A prediction and its label, joined once."""

    prediction: Prediction
    label: Label

    @property
    def delay(self) -> float:
        """Seconds from the prediction to its label (never negative: clocks skew)."""
        return max(self.label.time - self.prediction.time, 0.0)
