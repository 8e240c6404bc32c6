# CloudWatch: log groups, the alarm topic, and one alarm per Prometheus alert in monitoring/rules/trendcast.rules.yml,
# with the same thresholds. Each alarm name ends with the alert's name; its runbook is docs/deploy.md#<alert, lowercase>.
#
#   TrendcastHighLatencyP95   ALB TargetResponseTime p95 > 2 s, 5 one-minute periods in a row
#   TrendcastHigh5xxRate      (target 5xx + ALB 5xx) / requests > 5 %, 3 one-minute periods (metric math)
#   TrendcastWorkerDown       no healthy target for 2 minutes; and running tasks < desired for 5 minutes
#   TrendcastNoModelLoaded    min trendcast_model_loaded (CloudWatch agent sidecar, one series per worker) < 1 for 5 min
#   TrendcastFeatureDrift     max trendcast_feature_drifted (sidecar; PSI >= 0.25 and KS agrees) >= 1 for 15 minutes
#   TrendcastNoRecentRetrain  no retrain decision line (`{"event": "promotion_decision"}` from logger trendcast.retrain)
#                             for 7 whole days: with a weekly schedule it fires within 8 days of the last success
#                             (CloudWatch evaluates at most 7 days, so 8 days cannot be written directly)

locals {
  metric_namespace = "Trendcast"
  alarm_actions    = [aws_sns_topic.alarms.arn]
}

# -- logs ---------------------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "prometheus" {
  name              = "/ecs/${local.name}/prometheus"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/ecs/${local.name}/exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# -- the alarm topic ----------------------------------------------------------------------------------------------------
resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.main.id
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# -- TrendcastHighLatencyP95 --------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "latency_p95" {
  alarm_name          = "${local.name}-TrendcastHighLatencyP95"
  alarm_description   = "p95 response time over 2 s for 5 minutes. Runbook: docs/deploy.md#trendcasthighlatencyp95"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = 2
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  dimensions = {
    LoadBalancer = aws_lb.api.arn_suffix
    TargetGroup  = aws_lb_target_group.api.arn_suffix
  }
}

# -- TrendcastHigh5xxRate -----------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  alarm_name          = "${local.name}-TrendcastHigh5xxRate"
  alarm_description   = "More than 5 % of requests answered 5xx for 3 minutes. Runbook: docs/deploy.md#trendcasthigh5xxrate"
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "error_percent"
    expression  = "IF(requests > 0, 100 * (FILL(target_5xx, 0) + FILL(elb_5xx, 0)) / requests, 0)"
    label       = "5xx share of requests (%)"
    return_data = true
  }

  metric_query {
    id = "target_5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      stat        = "Sum"
      period      = 60
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix }
    }
  }

  metric_query {
    id = "elb_5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      stat        = "Sum"
      period      = 60
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix }
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      stat        = "Sum"
      period      = 60
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix }
    }
  }
}

# -- TrendcastWorkerDown ------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "tasks_below_desired" {
  alarm_name          = "${local.name}-TrendcastWorkerDown"
  alarm_description   = "Fewer API tasks running than desired for 5 minutes. Runbook: docs/deploy.md#trendcastworkerdown"
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "missing_tasks"
    expression  = "desired - running"
    label       = "desired minus running tasks"
    return_data = true
  }

  metric_query {
    id = "desired"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      stat        = "Minimum"
      period      = 60
      dimensions  = { ClusterName = aws_ecs_cluster.main.name, ServiceName = aws_ecs_service.api.name }
    }
  }

  metric_query {
    id = "running"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      stat        = "Minimum"
      period      = 60
      dimensions  = { ClusterName = aws_ecs_cluster.main.name, ServiceName = aws_ecs_service.api.name }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "no_healthy_targets" {
  alarm_name          = "${local.name}-TrendcastWorkerDown-NoHealthyTarget"
  alarm_description   = "No API task passes /ready behind the load balancer for 2 minutes. Runbook: docs/deploy.md#trendcastworkerdown"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  dimensions = {
    LoadBalancer = aws_lb.api.arn_suffix
    TargetGroup  = aws_lb_target_group.api.arn_suffix
  }
}

# -- TrendcastNoModelLoaded (from the CloudWatch agent sidecar, ecs.tf) ------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "no_model" {
  alarm_name          = "${local.name}-TrendcastNoModelLoaded"
  alarm_description   = "A worker has served no model (trendcast_model_loaded == 0) for 5 minutes. Runbook: docs/deploy.md#trendcastnomodelloaded"
  namespace           = local.metric_namespace
  metric_name         = "trendcast_model_loaded"
  statistic           = "Minimum" # one series per worker: the minimum is 0 when any worker has no model
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching" # nothing scraped is no proof that a model is loaded
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  dimensions          = { Service = local.api_family }
}

# -- TrendcastFeatureDrift (from the CloudWatch agent sidecar, ecs.tf) ------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "feature_drift" {
  alarm_name          = "${local.name}-TrendcastFeatureDrift"
  alarm_description   = "A feature drifted (PSI >= TRENDCAST_DRIFT_PSI_ALERT, 0.25, and the KS test agrees) for 15 minutes. Runbook: docs/deploy.md#trendcastfeaturedrift"
  namespace           = local.metric_namespace
  metric_name         = "trendcast_feature_drifted"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching" # fewer than the minimum recent inputs: no drift gauge yet
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  dimensions          = { Service = local.api_family }
}

# -- TrendcastNoRecentRetrain (log metric filter on the retrain task's decision line) ---------------------------------
resource "aws_cloudwatch_log_metric_filter" "retrain_decision" {
  name           = "${local.name}-retrain-decision"
  log_group_name = aws_cloudwatch_log_group.app.name
  # `trendcast retrain` logs its decision as one JSON line (logger trendcast.retrain) once every candidate was
  # evaluated, promoted or not; a retrain that fails at any step exits 1 without it.
  pattern = "{ $.event = \"promotion_decision\" }"

  metric_transformation {
    name      = "RetrainDecisions"
    namespace = local.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "no_recent_retrain" {
  alarm_name          = "${local.name}-TrendcastNoRecentRetrain"
  alarm_description   = "No completed retrain for 7 whole days (weekly schedule: within 8 days of the last success). Runbook: docs/deploy.md#trendcastnorecentretrain"
  namespace           = local.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.retrain_decision.metric_transformation[0].name
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 7
  datapoints_to_alarm = 7
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
