"""End-to-end jobs: ingest, train (walk-forward + tracking), the main `make run` job."""
