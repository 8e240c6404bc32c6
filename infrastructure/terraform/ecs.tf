# ECS on Fargate: the API service (container `api`, gunicorn on 8000, the image's CMD) behind the ALB, rolled out
# with the deployment circuit breaker, and the retrain task definition that schedule.tf runs weekly.

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

data "aws_subnet" "public" {
  for_each = toset(var.public_subnet_ids)
  id       = each.value
}

locals {
  # Settings every trendcast container shares (config.py reads TRENDCAST_*; secrets come from secrets.tf).
  # The root filesystem is read-only: everything written goes under /tmp, a task-local volume.
  common_environment = [
    { name = "TRENDCAST_ENVIRONMENT", value = "production" },
    { name = "TRENDCAST_LOG_JSON", value = "true" },
    { name = "TRENDCAST_LOG_LEVEL", value = "INFO" },
    { name = "TRENDCAST_DATA_DIR", value = "/tmp/trendcast" },
    { name = "TRENDCAST_MLFLOW_EXPERIMENT", value = "trendcast" },
    { name = "PROMETHEUS_MULTIPROC_DIR", value = "/tmp/trendcast-prometheus" },
    { name = "MPLCONFIGDIR", value = "/tmp/matplotlib" },
    { name = "TRENDCAST_MLFLOW_ARTIFACT_ROOT", value = local.artifact_root }, # where a new experiment keeps artifacts
  ]

  api_environment = concat(local.common_environment, [
    { name = "TRENDCAST_HOST", value = "0.0.0.0" },
    { name = "TRENDCAST_PORT", value = tostring(local.container_port) },
    { name = "TRENDCAST_WORKERS", value = tostring(var.gunicorn_workers) },
    { name = "TRENDCAST_RATE_LIMIT", value = var.rate_limit },
    { name = "TRENDCAST_CORS_ORIGINS", value = jsonencode(var.cors_origins) },
    { name = "TRENDCAST_MODEL_POLL_SECONDS", value = tostring(var.model_poll_seconds) },
    # X-Forwarded-For/-Proto are believed from the ALB's subnets only (its nodes' addresses); rate limits and the
    # access log then see the client, not the load balancer.
    { name = "TRENDCAST_TRUSTED_PROXIES", value = jsonencode([for s in data.aws_subnet.public : s.cidr_block]) },
  ])

  tmp_mount = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]

  artifact_root = "s3://${aws_s3_bucket.artifacts.bucket}/${local.artifact_prefix}"

  # The CloudWatch agent sidecar scrapes the service's /metrics inside the task and turns the model-loaded and drift
  # gauges into CloudWatch metrics (namespace Trendcast), so monitoring.tf can alarm on the same signals as the
  # Prometheus rules (monitoring/rules/trendcast.rules.yml).
  prometheus_scrape_config = jsonencode({
    global = { scrape_interval = "1m", scrape_timeout = "10s" }
    scrape_configs = [{
      job_name       = "trendcast"
      metrics_path   = "/metrics"
      static_configs = [{ targets = ["localhost:${local.container_port}"], labels = { Service = local.api_family } }]
    }]
  })

  cloudwatch_agent_config = jsonencode({
    logs = {
      metrics_collected = {
        prometheus = {
          log_group_name         = aws_cloudwatch_log_group.prometheus.name
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          emf_processor = {
            metric_namespace = local.metric_namespace
            metric_declaration = [{
              source_labels    = ["job"]
              label_matcher    = "^trendcast$"
              dimensions       = [["Service"]]
              metric_selectors = [
                "^trendcast_model_loaded$",
                "^trendcast_feature_drifted$",
                "^trendcast_feature_psi$",
                "^trendcast_class_mix_psi$",
              ]
            }]
          }
        }
      }
      force_flush_interval = 5
    }
  })
}

resource "aws_ecs_task_definition" "api" {
  family                   = local.api_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp" # task-local scratch (Fargate ephemeral storage): PROMETHEUS_MULTIPROC_DIR, model downloads
  }

  container_definitions = jsonencode([
    {
      name      = local.container_name
      image     = "${aws_ecr_repository.api.repository_url}:${var.image_tag}"
      essential = true
      # command: the image's CMD, `gunicorn -c gunicorn.conf.py`
      user                   = var.container_user
      readonlyRootFilesystem = true
      privileged             = false
      portMappings           = [{ containerPort = local.container_port, protocol = "tcp", name = "http" }]
      environment            = local.api_environment
      secrets                = local.container_secrets
      mountPoints            = local.tmp_mount
      stopTimeout            = 35 # gunicorn graceful_timeout is 30 s
      linuxParameters        = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      ulimits                = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
      healthCheck = {
        command = [
          "CMD", "python", "-c",
          "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${local.container_port}/health', timeout=4).status == 200 else 1)",
        ]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.app.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "api"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    },
    {
      name                   = "cloudwatch-agent"
      image                  = var.cloudwatch_agent_image
      essential              = false # losing the metrics sidecar must not stop the API (the alarms notice)
      readonlyRootFilesystem = false
      privileged             = false
      environment = [
        { name = "CW_CONFIG_CONTENT", value = local.cloudwatch_agent_config },
        { name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_scrape_config },
      ]
      dependsOn = [{ containerName = local.container_name, condition = "START" }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.app.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "cloudwatch-agent"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "api" {
  name                               = local.api_family
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.api.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 120
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  deployment_controller {
    type = "ECS" # rolling update
  }

  # A deployment whose tasks never become healthy stops and rolls back to the last good task definition.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # ...and so does one that raises the latency or 5xx alarm while it rolls out.
  alarms {
    enable      = true
    rollback    = true
    alarm_names = [aws_cloudwatch_metric_alarm.latency_p95.alarm_name, aws_cloudwatch_metric_alarm.http_5xx.alarm_name]
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    # The CI/CD workflow registers new task definition revisions; autoscaling owns the count.
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.execution]
}

# -- autoscaling: CPU and requests per task ---------------------------------------------------------------------------
resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${local.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.api.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}

# -- the retrain task (run by schedule.tf, or by hand: docs/deploy.md) ------------------------------------------------
resource "aws_ecs_task_definition" "retrain" {
  family                   = local.retrain_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.retrain_cpu
  memory                   = var.retrain_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = 30
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "retrain"
    image                  = "${aws_ecr_repository.api.repository_url}:${var.image_tag}"
    essential              = true
    command                = var.retrain_command
    user                   = var.container_user
    readonlyRootFilesystem = true
    privileged             = false
    environment            = local.common_environment
    secrets                = local.container_secrets
    mountPoints            = local.tmp_mount
    linuxParameters        = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "retrain"
      }
    }
  }])
}
