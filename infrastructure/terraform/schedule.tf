# The weekly retrain: an EventBridge rule runs the retrain task definition (latest revision) on Fargate. The task
# evaluates every candidate behind the promotion gates and moves the `champion` alias only if all pass; the API
# tasks pick a new champion up within TRENDCAST_MODEL_POLL_SECONDS. Its decision line feeds the retrain alarm.

resource "aws_cloudwatch_event_rule" "retrain" {
  name                = "${local.name}-retrain"
  description         = "Weekly trendcast retrain (ECS task ${local.retrain_family})"
  schedule_expression = var.retrain_schedule
}

resource "aws_cloudwatch_event_target" "retrain" {
  rule     = aws_cloudwatch_event_rule.retrain.name
  arn      = aws_ecs_cluster.main.arn
  role_arn = aws_iam_role.events.arn

  ecs_target {
    # Without a revision: the latest ACTIVE revision, so a deploy that registers a new retrain revision is picked up.
    task_definition_arn     = aws_ecs_task_definition.retrain.arn_without_revision
    task_count              = 1
    launch_type             = "FARGATE"
    platform_version        = "LATEST"
    enable_ecs_managed_tags = true
    propagate_tags          = "TASK_DEFINITION"

    network_configuration {
      subnets          = var.private_subnet_ids
      security_groups  = [aws_security_group.tasks.id]
      assign_public_ip = false
    }
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 3
  }
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.name}-retrain-schedule"
  description        = "EventBridge runs the trendcast retrain task"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "RunRetrain"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.retrain_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    sid       = "TagRetrainTask"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.main.name}/*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "${local.name}-retrain-schedule"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}
