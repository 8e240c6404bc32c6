# trendcast API image: gunicorn with Uvicorn workers (gunicorn.conf.py) serving the registry's champion on :8000.
# The same image runs the retrain scheduler (`trendcast schedule`) and the one-shot trainer (`trendcast run --no-serve`);
# see docker-compose.yml. Build: `docker build -t trendcast .`
#
# Two stages: the builder has the compilers and pip's work files; the runtime stage gets only the finished venv
# (/opt/venv) and the one shared library the wheels do not bundle (libgomp1, OpenMP for LightGBM).
# The base image names its Debian release (trixie) so the apt version pins below stay meaningful.

FROM python:3.11-slim-trixie AS builder

# build-essential: some dependencies build from source distributions (peewee's C extensions, lime). The version is
# pinned to Debian trixie's 12.x series (a glob: security updates within the release keep installing).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.* \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The same two installs as `make install` (Makefile, $(STAMP)); tests/integration/test_container_files.py compares
# them so they cannot drift. One difference: locally pip finds the CPU-only torch wheel in a local wheel folder, which
# does not exist inside a build, so torch comes from the PyTorch CPU index here (no CUDA libraries in the image).
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir .


FROM python:3.11-slim-trixie AS runtime

LABEL org.opencontainers.image.title="trendcast" \
      org.opencontainers.image.description="Stock direction forecasts: FastAPI service, retrain scheduler and trainer" \
      org.opencontainers.image.licenses="MIT"

# libgomp1: OpenMP runtime that LightGBM's wheel links against (torch bundles its own). Pinned to trixie's GCC 14.2
# series. The service user has a fixed uid/gid (10001) so volume ownership and Kubernetes/ECS runAsUser match.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1=14.2.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 trendcast \
    && useradd --system --no-log-init --uid 10001 --gid trendcast --create-home --home-dir /home/trendcast \
       --shell /usr/sbin/nologin trendcast \
    && mkdir -p /var/lib/trendcast \
    && chown trendcast:trendcast /var/lib/trendcast

COPY --from=builder /opt/venv /opt/venv

# TRENDCAST_HOST/TRENDCAST_PORT/TRENDCAST_WORKERS are read by gunicorn.conf.py; TRENDCAST_DATA_DIR is a volume in
# docker-compose.yml (reports, locks). GIT_PYTHON_REFRESH: MLflow looks for git, which the image does not have.
# MPLCONFIGDIR under /tmp: on ECS the root filesystem is read-only and /tmp is the task's writable volume.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    GIT_PYTHON_REFRESH=quiet \
    MPLCONFIGDIR=/tmp/matplotlib \
    TRENDCAST_HOST=0.0.0.0 \
    TRENDCAST_PORT=8000 \
    TRENDCAST_WORKERS=2 \
    TRENDCAST_DATA_DIR=/var/lib/trendcast

# Code and settings stay owned by root (read-only to the service user); `trendcast run` reads configs/ from here.
WORKDIR /app
COPY gunicorn.conf.py ./
COPY configs ./configs

USER 10001:10001
EXPOSE 8000

# Liveness without curl or wget (neither is in the image): Python's urllib fails on anything but a 2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TRENDCAST_PORT', '8000') + '/health', timeout=4)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py"]
