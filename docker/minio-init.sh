#!/bin/sh
# One-shot setup of MinIO for MLflow's artifacts (docker-compose.yml, service `minio-init`, image minio/mc).
# Idempotent: creates the bucket, a policy limited to that bucket, and the MLflow server's own access key,
# so the tracking server never holds MinIO's root credentials. Every value comes from the environment (.env).
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MLFLOW_S3_ACCESS_KEY:?}" "${MLFLOW_S3_SECRET_KEY:?}"
bucket="${MLFLOW_BUCKET:-mlflow}"

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$bucket"

policy=/tmp/mlflow-artifacts-policy.json
# printf, not cat: the mc image has a shell but few other tools.
printf '%s\n' '{"Version": "2012-10-17", "Statement": [' \
    "{\"Effect\": \"Allow\", \"Action\": [\"s3:GetBucketLocation\", \"s3:ListBucket\"], \"Resource\": [\"arn:aws:s3:::$bucket\"]}," \
    "{\"Effect\": \"Allow\", \"Action\": [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\"], \"Resource\": [\"arn:aws:s3:::$bucket/*\"]}" \
    ']}' >"$policy"
mc admin policy create local mlflow-artifacts "$policy" >/dev/null
mc admin user add local "$MLFLOW_S3_ACCESS_KEY" "$MLFLOW_S3_SECRET_KEY" >/dev/null
# attach fails when the policy is already attached (a second `up`); the check below is what counts
mc admin policy attach local mlflow-artifacts --user "$MLFLOW_S3_ACCESS_KEY" >/dev/null 2>&1 || true
info=$(mc admin user info local "$MLFLOW_S3_ACCESS_KEY")
case "$info" in
    *mlflow-artifacts*) ;;
    *) echo "minio-init: the policy mlflow-artifacts is not attached to the MLflow access key" >&2; exit 1 ;;
esac
echo "minio-init: bucket $bucket and the MLflow access key are ready"
