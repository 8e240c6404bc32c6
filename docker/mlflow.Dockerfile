# MLflow tracking server for the local stack (docker-compose.yml, service `mlflow`): runs, registry and model
# aliases in PostgreSQL, artifacts in MinIO through S3 (proxied by the server, so clients need no S3 credentials).
# The official ghcr.io/mlflow/mlflow image carries neither the PostgreSQL driver nor boto3, hence this small image.
# mlflow is pinned to the version in pyproject.toml (tests/integration/test_container_files.py keeps them equal):
# a client and server of different versions may disagree on the registry's schema.

FROM python:3.11-slim-trixie

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    GIT_PYTHON_REFRESH=quiet

# Wheels only (psycopg2-binary bundles libpq), so no compiler is needed.
RUN pip install --no-cache-dir mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.8 \
    && groupadd --system --gid 10001 mlflow \
    && useradd --system --no-log-init --uid 10001 --gid mlflow --create-home --home-dir /home/mlflow \
       --shell /usr/sbin/nologin mlflow

WORKDIR /home/mlflow
USER 10001:10001
EXPOSE 5000

# MLflow's /health route is exempt from its Host-header check; urllib instead of curl (not in the image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]

# docker-compose.yml passes the store options; alone it serves a local file store on :5000.
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
