#!/bin/sh
# One-shot trainer of the local stack (docker-compose.yml, service `trainer`, the trendcast image).
# On the first `docker compose up` nothing is registered yet, so the API would answer 503 model_not_ready: this
# ingests the bundled data into PostgreSQL and runs the quick experiment (`trendcast run --no-serve`, about 3-5 min
# on 2 cores), whose promotion gates register the champion in MLflow. When a champion already exists (a later `up`)
# it does nothing, so restarts are fast; the scheduler retrains from then on.
set -eu

if python - <<'PY'
import sys

from trendcast import tracking
from trendcast.config import load_settings

settings = load_settings()
version = tracking.alias_version(settings, settings.model_alias)
print(f"trainer: {settings.model_alias} is version {version}" if version else "trainer: no champion registered yet")
sys.exit(0 if version else 1)
PY
then
    exit 0
fi
exec trendcast run --no-serve
