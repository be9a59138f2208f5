# The operator's image: the modelloop package and its dependencies, nothing else; with
# the feedback extra (redis-py), so `modelloop feedback` runs from it on either store.
# It cannot be built on the development machine of this repository (no container
# runtime there); `make e2e-kind` builds it where Docker is available.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/modelloop \
 && /opt/modelloop/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/modelloop/bin/pip install --no-cache-dir '.[feedback]' \
 && find /opt/modelloop -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
COPY --from=build /opt/modelloop /opt/modelloop
# MALLOC_ARENA_MAX: glibc gives each thread its own malloc arena (up to 8 per core); the
# operator's threads (evaluation lanes, query pools, kopf's executor) left freed memory
# spread over them. `make bench-scale` at 1000 Models: 24 MiB less RSS with 2, same CPU.
ENV PATH=/opt/modelloop/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
# The chart runs it as this user with a read-only root filesystem.
USER 65532:65532
ENTRYPOINT ["modelloop"]
CMD ["run"]
