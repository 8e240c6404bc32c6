# Secrets Manager: what the containers get as `secrets` (never as plain environment variables).
#   api_keys, admin_api_keys  JSON lists you fill in after the first apply (docs/deploy.md), e.g. ["k1","k2"]
#   database_url               generated here from the RDS password; also the MLflow tracking URI (same database)
#   redis_url                  generated here from the Redis AUTH token (rediss://, TLS)

resource "random_password" "db" {
  length  = 40
  special = false # the password sits inside a URL
}

resource "random_password" "redis_auth" {
  length  = 48
  special = false # ElastiCache AUTH tokens exclude @, " and /; and it sits inside a URL
}

resource "aws_secretsmanager_secret" "api_keys" {
  #checkov:skip=CKV2_AWS_57:API keys are issued to clients by hand; rotating them is a coordinated operator task (docs/deploy.md), not a Lambda
  name        = "${local.name}/api-keys"
  description = "TRENDCAST_API_KEYS: JSON list of client API keys for /api routes"
  kms_key_id  = aws_kms_key.main.arn
}

resource "aws_secretsmanager_secret" "admin_api_keys" {
  #checkov:skip=CKV2_AWS_57:admin keys are issued by hand; rotating them is a coordinated operator task (docs/deploy.md), not a Lambda
  name        = "${local.name}/admin-api-keys"
  description = "TRENDCAST_ADMIN_API_KEYS: JSON list of admin keys for /api/v1/admin (required in production)"
  kms_key_id  = aws_kms_key.main.arn
}

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:the value is a full SQLAlchemy URL built from the RDS password; a rotation Lambda would have to rebuild it, so the password is rotated with terraform apply -replace=random_password.db
  name        = "${local.name}/database-url"
  description = "TRENDCAST_DATABASE_URL and TRENDCAST_MLFLOW_TRACKING_URI (PostgreSQL, TLS required)"
  kms_key_id  = aws_kms_key.main.arn
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id = aws_secretsmanager_secret.database_url.id
  secret_string = format(
    "postgresql+psycopg://%s:%s@%s:%d/%s?sslmode=require",
    aws_db_instance.main.username,
    random_password.db.result,
    aws_db_instance.main.address,
    aws_db_instance.main.port,
    aws_db_instance.main.db_name,
  )
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:the value is a rediss:// URL built from the AUTH token; rotated with terraform apply -replace=random_password.redis_auth
  name        = "${local.name}/redis-url"
  description = "TRENDCAST_REDIS_URL (ElastiCache, TLS and AUTH)"
  kms_key_id  = aws_kms_key.main.arn
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id = aws_secretsmanager_secret.redis_url.id
  secret_string = format(
    "rediss://:%s@%s:%d/0",
    random_password.redis_auth.result,
    aws_elasticache_replication_group.main.primary_endpoint_address,
    aws_elasticache_replication_group.main.port,
  )
}

locals {
  # Secrets each container gets; the execution role may read exactly these (iam.tf).
  container_secrets = [
    { name = "TRENDCAST_API_KEYS", valueFrom = aws_secretsmanager_secret.api_keys.arn },
    { name = "TRENDCAST_ADMIN_API_KEYS", valueFrom = aws_secretsmanager_secret.admin_api_keys.arn },
    { name = "TRENDCAST_DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url.arn },
    { name = "TRENDCAST_MLFLOW_TRACKING_URI", valueFrom = aws_secretsmanager_secret.database_url.arn },
    { name = "TRENDCAST_REDIS_URL", valueFrom = aws_secretsmanager_secret.redis_url.arn },
  ]
  secret_arns = [
    aws_secretsmanager_secret.api_keys.arn,
    aws_secretsmanager_secret.admin_api_keys.arn,
    aws_secretsmanager_secret.database_url.arn,
    aws_secretsmanager_secret.redis_url.arn,
  ]
}
