# syntax=docker/dockerfile:1.7
# One image for every process of the Signup Platform (web, relays, consumers, dev sinks, DLQ tool):
# the process is chosen by the command, e.g.
#   docker build -t signup-platform .
#   docker run signup-platform accounts-web        (or: accounts relay, notifications consume, ...)
# Built with uv from the lock file: the third-party dependencies first (a layer that changes only
# with uv.lock), then the workspace packages, installed (not editable) into /app/.venv. The
# runtime stage holds that environment and no build tools; it runs as an unprivileged user.
# Not built on the development machine (it has no Docker engine): see README, Deployment.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# 1. Third-party dependencies only, exactly as locked.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --all-packages --no-install-workspace
# 2. The workspace packages (contracts/, shared/, services/*, and tools/: dev sinks, DLQ tool).
COPY . /src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# /app/var/keys and var/spaces exist, owned by the service user, so the compose volumes mounted
# there start writable by it (a new named volume takes its mount point's owner).
RUN groupadd --system --gid 10001 signup \
 && useradd --system --uid 10001 --gid signup --home-dir /app --no-create-home signup \
 && mkdir -p /app/var/keys /app/var/spaces \
 && chown -R signup:signup /app/var
COPY --from=builder /app/.venv /app/.venv
# HEALTH_PORT: the port whose /healthz the HEALTHCHECK asks (the process's *_WEB_PORT,
# *_CONSUMER_HEALTH_PORT or *_RELAY_HEALTH_PORT).
# Services bind their HTTP/health port to *_HTTP_HOST, 127.0.0.1 by default: set 0.0.0.0 in a
# container (the compose file and the Kubernetes manifests do).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    HEALTH_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HEALTH_PORT'] + '/healthz', timeout=2)"]
CMD ["accounts-web"]
