# What the CI/CD workflow needs (set them as repository variables: docs/deploy.md) and where the API answers.

output "api_endpoint" {
  description = "HTTPS base URL of the API (domain_name when set, else the load balancer's DNS name)."
  value       = "https://${local.api_domain}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer: point domain_name at it (CNAME or alias record)."
  value       = aws_lb.api.dns_name
}

output "aws_region" {
  description = "AWS_REGION repository variable."
  value       = local.region
}

output "ecr_repository" {
  description = "ECR_REPOSITORY repository variable (the repository name)."
  value       = aws_ecr_repository.api.name
}

output "ecr_repository_url" {
  description = "Registry URL to push images to (docker push <url>:<tag>)."
  value       = aws_ecr_repository.api.repository_url
}

output "ecs_cluster" {
  description = "ECS_CLUSTER repository variable."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service" {
  description = "ECS_SERVICE repository variable."
  value       = aws_ecs_service.api.name
}

output "ecs_task_family" {
  description = "ECS_TASK_FAMILY repository variable (the API task definition family)."
  value       = aws_ecs_task_definition.api.family
}

output "ecs_container_name" {
  description = "ECS_CONTAINER_NAME repository variable."
  value       = local.container_name
}

output "retrain_task_family" {
  description = "Task definition family of the weekly retrain (run it by hand with aws ecs run-task)."
  value       = aws_ecs_task_definition.retrain.family
}

output "deploy_role_arn" {
  description = "AWS_DEPLOY_ROLE_ARN repository variable: the role GitHub Actions assumes through OIDC."
  value       = aws_iam_role.deploy.arn
}

output "private_subnet_ids" {
  description = "Subnets for one-off tasks (aws ecs run-task --network-configuration)."
  value       = var.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group for one-off tasks (aws ecs run-task --network-configuration)."
  value       = aws_security_group.tasks.id
}

output "mlflow_artifact_root" {
  description = "S3 location of the MLflow artifacts (the experiment's artifact_location)."
  value       = local.artifact_root
}

output "secret_arns" {
  description = "Secrets Manager secrets; fill api_keys and admin_api_keys before the service starts."
  value = {
    api_keys       = aws_secretsmanager_secret.api_keys.arn
    admin_api_keys = aws_secretsmanager_secret.admin_api_keys.arn
    database_url   = aws_secretsmanager_secret.database_url.arn
    redis_url      = aws_secretsmanager_secret.redis_url.arn
  }
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies; subscribe more endpoints to it."
  value       = aws_sns_topic.alarms.arn
}

output "log_group" {
  description = "CloudWatch log group of the API (stream prefix api/) and the retrain (retrain/)."
  value       = aws_cloudwatch_log_group.app.name
}
