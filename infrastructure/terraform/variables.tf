# Inputs. Only the network, the certificate and the GitHub repository have no default; see docs/deploy.md.

variable "name" {
  description = "Name prefix of every resource (ECR repository, ECS cluster/service/task families, alarms)."
  type        = string
  default     = "trendcast"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment tag (production, staging, ...); the service always runs TRENDCAST_ENVIRONMENT=production."
  type        = string
  default     = "production"
}

variable "aws_region" {
  description = "AWS region to deploy into (the AWS_REGION repository variable of the CI/CD workflow)."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# -- network (not created here) ----------------------------------------------------------------------------------------
variable "vpc_id" {
  description = "VPC to deploy into."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets (two or more AZs) for the internet-facing load balancer."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An ALB needs subnets in at least two availability zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more AZs, with a NAT gateway or VPC endpoints for ECR, Secrets Manager, CloudWatch Logs and S3) for the tasks, RDS and Redis."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "RDS and ElastiCache subnet groups need subnets in at least two availability zones."
  }
}

# -- load balancer ------------------------------------------------------------------------------------------------------
variable "certificate_arn" {
  description = "ARN of the ACM certificate for the HTTPS listener (issued in the same region, covering domain_name)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)."
  }
}

variable "domain_name" {
  description = "DNS name clients use (a CNAME/alias to the ALB that you create); empty = the ALB's own DNS name."
  type        = string
  default     = ""
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion (turn off only to destroy the stack)."
  type        = bool
  default     = true
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the load balancer on 443 and 80 (80 only redirects to 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.2 or newer only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("TLS13-1-2|TLS-1-2", var.ssl_policy))
    error_message = "ssl_policy must be a TLS 1.2+ policy, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06."
  }
}

# -- service ------------------------------------------------------------------------------------------------------------
variable "image_tag" {
  description = "Image tag the first task definition revision uses; later revisions come from the CI/CD workflow (Terraform ignores them)."
  type        = string
  default     = "bootstrap"
}

variable "container_user" {
  description = "Non-root UID[:GID] the containers run as (the image's unprivileged user)."
  type        = string
  default     = "10001:10001"

  validation {
    condition     = !can(regex("^(0|root)(:|$)", var.container_user))
    error_message = "container_user must not be root."
  }
}

variable "api_cpu" {
  description = "CPU units of one API task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Memory (MiB) of one API task; each gunicorn worker holds its own model."
  type        = number
  default     = 2048
}

variable "gunicorn_workers" {
  description = "TRENDCAST_WORKERS: gunicorn workers per task (about one per vCPU)."
  type        = number
  default     = 1
}

variable "desired_count" {
  description = "API tasks to start with; autoscaling moves it between min_capacity and max_capacity."
  type        = number
  default     = 2
}

variable "min_capacity" {
  description = "Fewest API tasks autoscaling keeps."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Most API tasks autoscaling starts."
  type        = number
  default     = 6

  validation {
    condition     = var.max_capacity >= 1
    error_message = "max_capacity must be at least 1."
  }
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation (%) of the API service for target-tracking autoscaling."
  type        = number
  default     = 60
}

variable "requests_per_target" {
  description = "Target ALBRequestCountPerTarget (requests per task per minute) for target-tracking autoscaling."
  type        = number
  default     = 600
}

variable "rate_limit" {
  description = "TRENDCAST_RATE_LIMIT: default limit per client and route (limits syntax), shared between tasks through Redis."
  type        = string
  default     = "100/minute"
}

variable "cors_origins" {
  description = "TRENDCAST_CORS_ORIGINS: browser origins allowed to call the API."
  type        = list(string)
  default     = []
}

variable "model_poll_seconds" {
  description = "TRENDCAST_MODEL_POLL_SECONDS: how often each task checks the champion alias and reloads a new champion."
  type        = number
  default     = 300
}

variable "cloudwatch_agent_image" {
  description = "CloudWatch agent image of the sidecar that scrapes /metrics (Prometheus) into CloudWatch metrics; pin a version tag from gallery.ecr.aws/cloudwatch-agent/cloudwatch-agent in production."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:latest"
}

# -- retrain ------------------------------------------------------------------------------------------------------------
variable "retrain_schedule" {
  description = "EventBridge schedule expression of the weekly retrain task (UTC)."
  type        = string
  default     = "cron(0 2 ? * SUN *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.retrain_schedule))
    error_message = "retrain_schedule must be an EventBridge expression such as cron(0 2 ? * SUN *)."
  }
}

variable "retrain_command" {
  description = "Command of the retrain task (add \"--source\", \"yahoo\" to ingest new bars first; that needs internet egress)."
  type        = list(string)
  default     = ["trendcast", "retrain", "--json"]
}

variable "retrain_cpu" {
  description = "CPU units of the retrain task."
  type        = number
  default     = 4096
}

variable "retrain_memory" {
  description = "Memory (MiB) of the retrain task."
  type        = number
  default     = 16384
}

# -- data stores --------------------------------------------------------------------------------------------------------
variable "db_instance_class" {
  description = "RDS PostgreSQL instance class (bars, schedule slots and the MLflow registry)."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage (GiB); storage autoscaling grows it up to db_max_allocated_storage."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Upper bound (GiB) of RDS storage autoscaling."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Run RDS with a synchronous standby in a second AZ."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days RDS keeps automated backups (point-in-time recovery)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Protect the database from deletion (turn off only to destroy the stack)."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes in the replication group: a primary and replicas in other AZs (automatic failover needs 2+)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_num_cache_clusters >= 2 && var.redis_num_cache_clusters <= 6
    error_message = "redis_num_cache_clusters must be between 2 and 6 (Multi-AZ automatic failover needs a replica)."
  }
}

variable "artifact_noncurrent_days" {
  description = "Days S3 keeps noncurrent versions of MLflow artifacts."
  type        = number
  default     = 90
}

# -- monitoring ---------------------------------------------------------------------------------------------------------
variable "log_retention_days" {
  description = "Days CloudWatch keeps the service and retrain logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (empty = no subscription; confirm the e-mail AWS sends)."
  type        = string
  default     = ""
}

# -- CI/CD --------------------------------------------------------------------------------------------------------------
variable "github_repository" {
  description = "GitHub repository (owner/name) whose main branch may deploy through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_environment" {
  description = "GitHub environment of the deploy job (its OIDC subject is repo:OWNER/NAME:environment:ENV); allow only main to deploy to it. Empty = main-branch subjects only."
  type        = string
  default     = "production"
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com OIDC provider in the account; empty = create one (an account holds only one)."
  type        = string
  default     = ""
}
