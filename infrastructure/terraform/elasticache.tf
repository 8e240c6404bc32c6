# Redis: rate limits and the prediction cache shared by every API worker and task. TLS in transit, KMS at rest, AUTH.

resource "aws_elasticache_subnet_group" "main" {
  name        = local.name
  description = "trendcast Redis, private subnets"
  subnet_ids  = var.private_subnet_ids
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id = local.name
  description          = "trendcast rate limits and prediction cache"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  port                 = 6379
  num_cache_clusters   = var.redis_num_cache_clusters
  parameter_group_name = "default.redis7"

  automatic_failover_enabled = true # a replica in another AZ takes over when the primary fails
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.main.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth.result

  snapshot_retention_limit   = 1
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
