"""The AWS infrastructure as code, checked statically by real tools (no provider download, no AWS account needed).

- checkov over infrastructure/terraform (framework terraform) and infrastructure/cloudformation: zero failed checks;
  every skip is inline with its reason and listed in docs/deploy.md ("Checkov skips").
- cfn-lint: the CloudFormation template has no error or warning.
- python-hcl2 parses every .tf file; every variable has a type and a description and is used; the outputs the CI/CD
  workflow needs exist.
- The CloudWatch alarms use the thresholds (and durations) of the Prometheus rules in monitoring/rules/.

checkov and cfn-lint come from `make deploy-tools` (.venv-tools); missing, they skip the test saying so, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from tests.conftest import IN_CI
from tests.integration.deploy_tools import REPO, tool
from trendcast.config import Settings

pytestmark = pytest.mark.integration

TF_DIR = REPO / "infrastructure" / "terraform"
CFN_DIR = REPO / "infrastructure" / "cloudformation"
CFN_TEMPLATE = CFN_DIR / "trendcast-service.yaml"
RULES = REPO / "monitoring" / "rules" / "trendcast.rules.yml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

ALERTS = (
    "TrendcastHighLatencyP95",
    "TrendcastHigh5xxRate",
    "TrendcastFeatureDrift",
    "TrendcastNoRecentRetrain",
    "TrendcastNoModelLoaded",
    "TrendcastWorkerDown",
)
CI_OUTPUTS = ("api_endpoint", "aws_region", "ecr_repository", "ecs_cluster", "ecs_service", "ecs_task_family")
CI_OUTPUTS += ("deploy_role_arn",)


# -- helpers ------------------------------------------------------------------------------------------------------------
def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps HCL string quotes ('"x"'); drop them from strings, recursively."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _load_tf() -> dict[str, dict[str, Any]]:
    """{file name: parsed HCL} for every .tf file."""
    parsed = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        with path.open() as handle:
            parsed[path.name] = _unquote(hcl2.load(handle))
    return parsed


def _blocks(parsed: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Top-level blocks of one kind (variable, output) across files: {name: body}."""
    found: dict[str, dict[str, Any]] = {}
    for body in parsed.values():
        for entry in body.get(kind, []):
            found.update(entry)
    return found


def _resources(parsed: dict[str, dict[str, Any]], rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for body in parsed.values():
        for entry in body.get("resource", []):
            found.update(entry.get(rtype, {}))
    return found


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that accepts CloudFormation's short tags (!Ref, !Sub, ...) as plain {tag: value} mappings."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _cfn() -> dict[str, Any]:
    return yaml.load(CFN_TEMPLATE.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass


def _checkov(framework: str, directory: Path) -> dict[str, Any]:
    args = ["-d", str(directory), "--framework", framework, "--output", "json", "--quiet", "--compact"]
    out = subprocess.run(
        [tool("checkov"), *args, "--skip-download"],  # --skip-download: no call to the Prisma Cloud API
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # exit 1 when a check fails: the summary says which
    )
    assert out.stdout.strip(), f"checkov printed nothing (exit {out.returncode}): {out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    if isinstance(report, list):  # one report per framework; only ours was asked for
        (report,) = [r for r in report if r.get("check_type") == framework]
    return report


def _assert_clean(report: dict[str, Any], framework: str) -> None:
    summary = report["summary"]
    print(
        f"checkov {framework}: passed {summary['passed']}, failed {summary['failed']}, "
        f"skipped {summary['skipped']}, resources {summary['resource_count']}"
    )
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0, f"checkov could not parse some {framework} files"
    assert summary["failed"] == 0, (
        "fix these or skip them inline with a reason (and list them in docs/deploy.md):\n" + ("\n".join(failed))
    )
    assert summary["passed"] > 0, f"checkov ran no {framework} check: wrong directory?"


def _rules() -> dict[str, dict[str, Any]]:
    """The Prometheus alert rules by name; skip (fail under CI=true) when the file is not there yet."""
    if not RULES.is_file():
        message = f"{RULES.relative_to(REPO)} does not exist, so the alarm thresholds cannot be compared with it"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing rules file is a failure)")
        pytest.skip(message)
    rules = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rules[rule["alert"]] = rule
    return rules


def _rule_threshold(rule: dict[str, Any]) -> float:
    """The number the expression is compared with at its end (`... > 2`, `> 0.05`, `> 8 * 86400`, `== 1`)."""
    match = re.search(r"(?:>=|<=|==|!=|>|<)\s*([0-9.]+(?:\s*\*\s*[0-9.]+)*)\s*$", rule["expr"].strip())
    assert match, f"no trailing comparison in the expr of {rule['alert']}: {rule['expr']}"
    value = 1.0
    for factor in match.group(1).split("*"):
        value *= float(factor)
    return value


def _duration_s(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    assert match, f"unexpected Prometheus duration {text!r}"
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _tf_alarms() -> dict[str, dict[str, Any]]:
    """Terraform alarms by name after the prefix: `${local.name}-TrendcastHighLatencyP95` -> TrendcastHighLatencyP95."""
    alarms = _resources(_load_tf(), "aws_cloudwatch_metric_alarm").values()
    return {body["alarm_name"].split("}-", 1)[1]: body for body in alarms}


def _cfn_alarms() -> dict[str, dict[str, Any]]:
    """CloudFormation alarm properties by name after the prefix (`${ServiceName}-TrendcastX`)."""
    resources = _cfn()["Resources"].values()
    return {
        r["Properties"]["AlarmName"]["Sub"].split("}-", 1)[1]: r["Properties"]
        for r in resources
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def _alarm_window_s(alarm: dict[str, Any], period_key: str = "period", periods_key: str = "evaluation_periods") -> int:
    period = alarm.get(period_key)
    if period is None:  # metric math: the period of the queried metrics
        queries = alarm.get("metric_query") or alarm.get("Metrics")
        periods = {q["metric"][0]["period"] for q in queries if q.get("metric")} or {
            q["MetricStat"]["Period"] for q in queries if q.get("MetricStat")
        }
        (period,) = periods
    return int(period) * int(alarm[periods_key])


# -- checkov, once per framework ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkov_terraform() -> dict[str, Any]:
    return _checkov("terraform", TF_DIR)


@pytest.fixture(scope="module")
def checkov_cloudformation() -> dict[str, Any]:
    return _checkov("cloudformation", CFN_DIR)


def test_checkov_terraform_has_no_failed_checks(checkov_terraform: dict[str, Any]) -> None:
    _assert_clean(checkov_terraform, "terraform")


def test_checkov_cloudformation_has_no_failed_checks(checkov_cloudformation: dict[str, Any]) -> None:
    _assert_clean(checkov_cloudformation, "cloudformation")


def test_cfn_lint_is_clean() -> None:
    out = subprocess.run(
        [tool("cfn-lint"), "--format", "parseable", str(CFN_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0 and not out.stdout.strip(), f"cfn-lint found (exit {out.returncode}):\n{out.stdout}"


# -- Terraform, parsed --------------------------------------------------------------------------------------------------
def test_every_terraform_file_parses() -> None:
    parsed = _load_tf()
    expected = {"versions.tf", "variables.tf", "outputs.tf", "alb.tf", "ecs.tf", "ecr.tf", "rds.tf", "elasticache.tf"}
    expected |= {"s3.tf", "secrets.tf", "iam.tf", "monitoring.tf", "schedule.tf", "github_oidc.tf"}
    assert expected <= set(parsed), f"missing Terraform files: {sorted(expected - set(parsed))}"
    assert all(parsed.values()), "a .tf file parsed to nothing"


def test_every_variable_is_typed_described_and_used() -> None:
    parsed = _load_tf()
    variables = _blocks(parsed, "variable")
    assert variables, "no variable found"
    declared_elsewhere = {n for f, b in parsed.items() if f != "variables.tf" for e in b.get("variable", []) for n in e}
    assert not declared_elsewhere, f"declare variables in variables.tf only: {sorted(declared_elsewhere)}"
    # Uses outside variables.tf (a variable's own validation block does not count as a use).
    code = "\n".join(p.read_text() for p in TF_DIR.glob("*.tf") if p.name != "variables.tf")
    problems = []
    for name, body in variables.items():
        if not str(body.get("description", "")).strip():
            problems.append(f"{name}: no description")
        if "type" not in body:
            problems.append(f"{name}: no type")
        if not re.search(rf"\bvar\.{re.escape(name)}\b", code):
            problems.append(f"{name}: declared but never used as var.{name}")
    assert not problems, "\n".join(problems)


def test_outputs_give_the_api_endpoint_and_the_ci_variables() -> None:
    outputs = _blocks(_load_tf(), "output")
    missing = [name for name in CI_OUTPUTS if name not in outputs]
    assert not missing, f"missing outputs: {missing}"
    assert outputs["api_endpoint"]["value"].startswith("https://"), "api_endpoint must be an https URL"
    undocumented = [name for name, body in outputs.items() if not str(body.get("description", "")).strip()]
    assert not undocumented, f"outputs without a description: {undocumented}"


def test_deploy_role_trusts_only_main_of_the_repository() -> None:
    tf = (TF_DIR / "github_oidc.tf").read_text()
    assert '"repo:${var.github_repository}:ref:refs/heads/main"' in tf
    assert "repo:${var.github_repository}:*" not in tf and ":ref:refs/heads/*" not in tf, "a wildcard subject"
    service = _resources(_load_tf(), "aws_ecs_service")["api"]
    breaker = service["deployment_circuit_breaker"][0]
    assert breaker["enable"] is True and breaker["rollback"] is True
    assert service["network_configuration"][0]["assign_public_ip"] is False


# -- alarms = Prometheus rules --------------------------------------------------------------------------------------------
def test_every_alert_has_an_alarm_in_terraform_and_a_runbook() -> None:
    tf_alarms = _tf_alarms()
    doc = DEPLOY_DOC.read_text()
    for alert in ALERTS:
        assert alert in tf_alarms, f"no CloudWatch alarm named ...-{alert} in {TF_DIR.relative_to(REPO)}"
        assert re.search(rf"^### {alert}\s*$", doc, re.M), f"docs/deploy.md has no '### {alert}' runbook heading"
        assert f"#{alert.lower()}" in tf_alarms[alert]["alarm_description"], f"{alert}: no runbook link"


def test_alarm_thresholds_equal_the_prometheus_rules() -> None:
    rules = _rules()
    missing_runbooks = [a for a in rules if not re.search(rf"^### {a}\s*$", DEPLOY_DOC.read_text(), re.M)]
    assert not missing_runbooks, f"alerts of {RULES.name} without a runbook in docs/deploy.md: {missing_runbooks}"
    for source, alarms, threshold_key, window in (
        ("terraform", _tf_alarms(), "threshold", lambda a: _alarm_window_s(a)),
        ("cloudformation", _cfn_alarms(), "Threshold", lambda a: _alarm_window_s(a, "Period", "EvaluationPeriods")),
    ):
        latency, errors = alarms["TrendcastHighLatencyP95"], alarms["TrendcastHigh5xxRate"]
        rule = rules["TrendcastHighLatencyP95"]
        assert float(latency[threshold_key]) == _rule_threshold(rule), f"{source}: p95 latency threshold (s)"
        assert window(latency) == _duration_s(rule["for"]), f"{source}: p95 latency duration"
        rule = rules["TrendcastHigh5xxRate"]
        ratio = _rule_threshold(rule)
        percent = ratio * 100 if ratio <= 1 else ratio  # the rule compares a ratio, the alarm a percentage
        assert float(errors[threshold_key]) == pytest.approx(percent), f"{source}: 5xx share threshold (%)"
        assert window(errors) == _duration_s(rule["for"]), f"{source}: 5xx duration"

    tf_alarms = _tf_alarms()
    drift = tf_alarms["TrendcastFeatureDrift"]
    assert float(drift["threshold"]) == _rule_threshold(rules["TrendcastFeatureDrift"]), "drift: drifted flag"
    assert _alarm_window_s(drift) == _duration_s(rules["TrendcastFeatureDrift"]["for"]), "drift: duration"
    model = tf_alarms["TrendcastNoModelLoaded"]
    assert _alarm_window_s(model) == _duration_s(rules["TrendcastNoModelLoaded"]["for"]), "no model: duration"
    # CloudWatch evaluates at most 7 days; with daily periods and a weekly retrain the alarm fires within 8 days.
    max_age_s = _rule_threshold(rules["TrendcastNoRecentRetrain"])
    retrain_window = _alarm_window_s(tf_alarms["TrendcastNoRecentRetrain"])
    assert max_age_s - 86400 <= retrain_window <= max_age_s, "retrain: window not within a day below the rule's age"


def test_drift_alarm_follows_the_service_psi_threshold() -> None:
    """The drifted gauge is 1 at PSI >= TRENDCAST_DRIFT_PSI_ALERT; the alarm text and the scrape say the same."""
    psi_alert = Settings.model_fields["drift_psi_alert"].default
    drift = _tf_alarms()["TrendcastFeatureDrift"]
    assert drift["metric_name"] == "trendcast_feature_drifted"
    assert f"{psi_alert:g}" in drift["alarm_description"], f"the description should name PSI {psi_alert:g}"


# -- checkov skips are documented -----------------------------------------------------------------------------------------
def _iac_skips() -> list[tuple[str, str, str]]:
    """(check id, resource, reason) of every inline skip in the Terraform and the CloudFormation template."""
    skips = []
    for path in sorted(TF_DIR.glob("*.tf")):
        resource = None
        for line in path.read_text().splitlines():
            start = re.match(r'^(resource|data)\s+"([^"]+)"\s+"([^"]+)"', line)
            if start:
                resource = f"{start.group(2)}.{start.group(3)}"
            skip = re.search(r"#\s*checkov:skip=([A-Z0-9_]+):(.*)$", line)
            if skip:
                assert resource, f"{path.name}: a checkov skip outside a resource"
                skips.append((skip.group(1), resource, skip.group(2).strip()))
    for logical_id, resource in _cfn()["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            skips.append((skip["id"], logical_id, str(skip.get("comment", "")).strip()))
    return skips


def _documented_skips() -> set[tuple[str, str]]:
    """(check id, resource) pairs from the table rows of the "Checkov skips" section of docs/deploy.md."""
    doc = DEPLOY_DOC.read_text()
    section = re.search(r"^## Checkov skips\s*$(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert section, "docs/deploy.md has no '## Checkov skips' section"
    pairs = set()
    for row in re.findall(r"^\|(.+)\|\s*$", section.group(1), re.M):
        cells = [c.strip().strip("`") for c in row.split("|")]
        if re.fullmatch(r"CKV2?_[A-Z]+_\d+", cells[0]):
            resource = cells[1].split(":")[-1].strip().strip("`")  # "s3.tf: aws_s3_bucket.logs" or the logical id
            pairs.add((cells[0], resource))
    return pairs


def test_every_checkov_skip_has_a_reason_and_is_listed_in_the_deploy_doc() -> None:
    skips = _iac_skips()
    assert skips, "no checkov skip found: if that is right, drop this test's table check"
    print(f"{len(skips)} checkov skips: " + ", ".join(f"{i} {r}" for i, r, _ in skips))
    no_reason = [f"{i} {r}" for i, r, reason in skips if len(reason) < 15]
    assert not no_reason, f"skips without a real reason: {no_reason}"
    documented = _documented_skips()
    in_code = {(i, r) for i, r, _ in skips}
    assert not in_code - documented, f"skips missing from docs/deploy.md: {sorted(in_code - documented)}"
    assert not documented - in_code, (
        f"docs/deploy.md lists skips that the code no longer has: {sorted(documented - in_code)}"
    )
