"""The embedded pod and Job templates: the parts ModelLoop reads are checked at the API.

Everything else in a template is kept as written and validated by the API
server when the operator creates the Deployment or Job. What is declared here
is what the operator needs to build them: at least one container to give its
env to, labels and annotations it can merge with its own, and (for training)
a restart policy a Job accepts.
"""

from typing import Any, Literal

from pydantic import Field

from .base import OpenObject


class ObjectMeta(OpenObject):
    """Template metadata; ModelLoop merges its labels into these."""

    labels: dict[str, str] | None = Field(default=None, description="Labels, name to value.")
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations, name to value."
    )


class Container(OpenObject):
    """A container; ModelLoop appends its env to every one."""

    name: str = Field(
        description="Container name, a DNS label.",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
    )
    env: list[dict[str, Any]] | None = Field(default=None, description="Environment variables.")


class PodSpec(OpenObject):
    """A pod spec with at least one container."""

    containers: list[Container] = Field(
        description="The containers; at least one.", min_length=1, max_length=64
    )


class ServingPodSpec(PodSpec):
    """The pod spec of a Deployment's pods."""

    restart_policy: Literal["Always"] | None = Field(
        default=None, description="A Deployment's pods restart Always."
    )


class TrainingPodSpec(PodSpec):
    """The pod spec of a training Job's pod."""

    restart_policy: Literal["Never", "OnFailure"] = Field(
        default="Never",
        description="Never or OnFailure, as a Job requires; default Never (a failed training "
        "is a new training, decided by the operator's backoff).",
    )


class PodTemplate(OpenObject):
    """A pod template: metadata and spec."""

    metadata: ObjectMeta | None = Field(default=None, description="Pod labels and annotations.")
    spec: ServingPodSpec = Field(description="The pod spec.")


class TrainingPodTemplate(OpenObject):
    """The training pod's template."""

    metadata: ObjectMeta | None = Field(default=None, description="Pod labels and annotations.")
    spec: TrainingPodSpec = Field(description="The pod spec.")


class JobSpec(OpenObject):
    """A Job spec; ttlSecondsAfterFinished is dropped (a Job is deleted after its result
    is recorded)."""

    template: TrainingPodTemplate = Field(description="The training pod.")


class JobTemplate(OpenObject):
    """A batch/v1 Job template: metadata and spec."""

    metadata: ObjectMeta | None = Field(default=None, description="Job labels and annotations.")
    spec: JobSpec = Field(description="The Job spec.")
