# syntax=docker/dockerfile:1
# The rsafe-gateway image. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t rsafe-gateway:0.1.0 .
#
# builder: a venv with exactly the pinned dependencies (docker/gateway-requirements.lock, binary wheels only)
#          plus the gateway's own wheel; `pip check` fails the build if the lock and pyproject.toml drift.
# runtime: the same slim base, the venv and the shipped policies only; no compilers, no pip; non-root.
# To pin the base by digest too: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY docker/gateway-requirements.lock ./
RUN /opt/venv/bin/pip install --only-binary=:all: --requirement gateway-requirements.lock
COPY pyproject.toml README.md ./
COPY service/ ./service/
COPY core/ ./core/
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import rsafe_gateway.settings" \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="rsafe-gateway" \
      org.opencontainers.image.description="Moderation gateway for the RSafe guard model served by vLLM" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 rsafe \
 && useradd --system --uid 10001 --gid rsafe --home-dir /app --no-create-home --shell /usr/sbin/nologin rsafe
COPY --from=builder /opt/venv /opt/venv
# Shipped policies, read-only for the service user; operators add their own through RSAFE_POLICY_DIR.
COPY policies/ /app/policies/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RSAFE_HOST=0.0.0.0 \
    RSAFE_PORT=8080 \
    RSAFE_SHIPPED_POLICY_DIR=/app/policies
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RSAFE_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["python", "-m", "rsafe_gateway"]
