# syntax=docker/dockerfile:1
#
# maxcompute-exporter container image.
#
#   docker build -t ghcr.io/maxcompute-exporter/maxcompute-exporter:dev .
#   docker run --rm -p 10181:10181 ghcr.io/maxcompute-exporter/maxcompute-exporter:dev --demo
#   docker run --rm -p 10181:10181 \
#     -e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET \
#     -v "$PWD/config.yaml:/etc/maxcompute-exporter/config.yaml:ro" ghcr.io/maxcompute-exporter/maxcompute-exporter:dev
#
# Released images (amd64 and arm64) are built by .github/workflows/release.yml.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: wheels of the project and of all its dependencies -------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- final: the wheels installed on a clean slim image, no build tools or caches ----
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="maxcompute-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Alibaba Cloud MaxCompute running jobs, aggregated by quota and project" \
      org.opencontainers.image.url="https://github.com/maxcompute-exporter/maxcompute-exporter" \
      org.opencontainers.image.source="https://github.com/maxcompute-exporter/maxcompute-exporter" \
      org.opencontainers.image.documentation="https://github.com/maxcompute-exporter/maxcompute-exporter/blob/main/deploy/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The wheels are bind-mounted from the builder stage, so they never become a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
    && mkdir -p /etc/maxcompute-exporter

# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001

EXPOSE 10181

# The slim image has no curl: probe /healthz with Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10181/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["maxcompute-exporter"]
CMD ["--config", "/etc/maxcompute-exporter/config.yaml"]
