# trendcast on AWS: ECS Fargate behind an ALB, RDS PostgreSQL, ElastiCache Redis, S3 for MLflow artifacts.
# The network (VPC and subnets) is an input: this stack does not build one. Bootstrap order: docs/deploy.md.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: `terraform init -backend-config=backend.hcl` (bucket, key, region, dynamodb_table or
  # use_lockfile) so no account detail is committed. See docs/deploy.md, "AWS bootstrap order".
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = var.name
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  name       = var.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  container_name  = "api" # ECS_CONTAINER_NAME in the CI/CD workflow
  container_port  = 8000
  api_family      = "${var.name}-api"
  retrain_family  = "${var.name}-retrain"
  api_domain      = var.domain_name != "" ? var.domain_name : aws_lb.api.dns_name
  artifact_prefix = "mlflow"
}
