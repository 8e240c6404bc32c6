"""Monitoring as code, checked by the real tools: promtool on the Prometheus config and the alert rules (and their
unit tests), and a real Prometheus scraping a real service (Gunicorn, two workers, multiprocess metrics, as
deployed) and a real `trendcast schedule` metrics endpoint, answering every Grafana panel's query.

No Grafana server runs here: the provisioning files and dashboards are checked for structure, and every panel's
PromQL is sent to Prometheus' HTTP API with Grafana's variables replaced by concrete values.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.deploy_tools import tool
from tests.integration.serving.conftest import ADMIN_KEY, Server, free_port, start_server
from tests.unit.serving.support import FEATURES, TICKERS, WINDOW, filled_store, fit_tiny_model, tiny_bars
from trendcast.config import LabelConfig
from trendcast.features.windows import build_window_set
from trendcast.models.bundle import write_bundle

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
RULES = MONITORING / "rules" / "trendcast.rules.yml"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
DASHBOARDS = {path.stem: path for path in sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))}
ALERTS = {
    "TrendcastHighLatencyP95",
    "TrendcastHigh5xxRate",
    "TrendcastFeatureDrift",
    "TrendcastNoRecentRetrain",
    "TrendcastNoModelLoaded",
    "TrendcastWorkerDown",
}
# Grafana's variables as a 1 s scrape interval makes them (rate windows of at least 4 scrapes)
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__interval": "5s", "$__range": "10m"}
METRIC = re.compile(r"\b(trendcast_[a-z0-9_]+|process_[a-z0-9_]+|up)\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name, path in DASHBOARDS.items() for panel in json.loads(path.read_text())["panels"]]


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard / panel title, PromQL with Grafana's variables replaced) for every target of every panel."""
    out = []
    for name, panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((f"{name} / {panel['title']}", expr))
    return out


# ----------------------------------------------------------------------------------------------- static checks


def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (
        ["check", "config", str(MONITORING / "prometheus.yml")],  # also checks the rule files it names
        ["check", "rules", str(RULES)],
    ):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fired == ALERTS and quiet == ALERTS


def test_alerts_carry_severity_summary_description_and_a_runbook() -> None:
    rules = alert_rules()
    assert set(rules) == ALERTS
    runbook = (REPO / "docs" / "deploy.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook"] == f"docs/deploy.md#{name.lower()}", name
        assert f"### {name}\n" in runbook, f"docs/deploy.md has no runbook section for {name}"


def test_prometheus_config_scrapes_the_compose_services() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: [t for sc in job["static_configs"] for t in sc["targets"]] for name, job in jobs.items()}
    assert targets == {
        "trendcast-api": ["api:8000"],
        "trendcast-scheduler": ["scheduler:9102"],
        "prometheus": ["localhost:9090"],
    }
    assert jobs["trendcast-api"]["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["rules/*.yml"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = MONITORING / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]
    assert (provider["type"], provider["options"]["path"]) == ("file", "/var/lib/grafana/dashboards")


def test_dashboards_are_complete_grafana_json() -> None:
    assert set(DASHBOARDS) == {"api", "model", "infrastructure", "business"}
    uids = []
    for name, path in DASHBOARDS.items():
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        assert dashboard["title"] and dashboard["schemaVersion"] >= 39, name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in dashboard["panels"]:
            where = f"{name} / {panel['title']}"
            assert panel["type"] in {"timeseries", "stat"}, where
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, where
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), where
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), where
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), where
            for target in panel["targets"]:  # one rate window style: Grafana's, or a fixed day range
                assert "$__interval]" not in target["expr"], f"{where}: use $__rate_interval in rate()"
    assert len(uids) == len(set(uids))


# ------------------------------------------------------------------------------ a real Prometheus, real targets


@dataclass
class Stack:
    api: Server
    scheduler_url: str
    prometheus_url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _model_dir(folder: Path) -> Path:
    """A tiny model saved as training saves it (with its drift reference, so the drift gauges get values)."""
    model = fit_tiny_model()
    train = build_window_set(tiny_bars(), window=WINDOW, labels=LabelConfig(), features=FEATURES)
    return write_bundle(model, train, folder, background_size=8)


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{what} did not answer {url} in {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")


def _never_soon_cron() -> str:
    """A weekly cron whose last fire was an hour ago: the next one is six days and 23 hours away."""
    past = datetime.now(UTC) - timedelta(hours=1)
    return f"{past.minute} {past.hour} * * {past.strftime('%a').upper()}"


def _scheduler(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"TRENDCAST_DATA_DIR": str(tmp / "scheduler-data"), "MLFLOW_DISABLE_TELEMETRY": "true"})
    args = [sys.executable, "-m", "trendcast.cli", "schedule", "--cron", _never_soon_cron()]
    return _spawn([*args, "--metrics-port", str(port), "--metrics-addr", "127.0.0.1"], tmp / "scheduler.log", env)


def _prometheus(tmp: Path, port: int, targets: dict[str, str]) -> subprocess.Popen[bytes]:
    """The repository's config with a 1 s scrape interval, the compose targets replaced by the test's servers."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / "rules" / "*.yml")]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [targets[t] for t in static["targets"]]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    args = [
        tool("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _spawn(args, tmp / "prometheus.log", dict(os.environ))


def _loaded_workers(server: Server) -> int:
    return len(re.findall(r"^trendcast_model_loaded\{[^}]*\} 1\.0$", server.client.get("/metrics").text, re.M))


def _wait_for_first_scrapes(stack: Stack, timeout_s: float = 30) -> None:
    """Prometheus applies its targets a few seconds after it is ready; traffic before the first scrape is not seen
    as an increase."""
    deadline = time.monotonic() + timeout_s
    while sum(float(r["value"][1]) for r in stack.query("up")) < 3:
        assert time.monotonic() < deadline, f"targets not all up: {stack.query('up')}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tool("prometheus")  # skip (or fail under CI) before starting anything
    tmp = tmp_path_factory.mktemp("monitoring")
    filled_store(f"sqlite:///{(tmp / 'data' / 'trendcast.db').resolve()}").close()
    model = _model_dir(tmp / "model")
    ports = {name: free_port() for name in ("api", "scheduler", "prometheus")}
    targets = {
        "api:8000": f"127.0.0.1:{ports['api']}",
        "scheduler:9102": f"127.0.0.1:{ports['scheduler']}",
        "localhost:9090": f"127.0.0.1:{ports['prometheus']}",
    }
    scheduler_url, prometheus_url = (f"http://{targets[t]}" for t in ("scheduler:9102", "localhost:9090"))
    # the scheduler and Prometheus start while the service does (Prometheus sees the api down until then)
    scheduler = _scheduler(tmp, ports["scheduler"])
    prometheus = _prometheus(tmp, ports["prometheus"], targets)
    env = {
        "TRENDCAST_DATA_DIR": str(tmp / "data"),
        "TRENDCAST_MODEL_DIR": str(model),
        "TRENDCAST_ADMIN_API_KEYS": f'["{ADMIN_KEY}"]',
        "TRENDCAST_WORKERS": "2",
        "TRENDCAST_TORCH_THREADS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
        "TRENDCAST_DRIFT_REFRESH_SECONDS": "1",  # drift gauges and outcomes every second
        "TRENDCAST_RATE_LIMIT": "5/minute",  # cheap 429s on the non-prediction routes
        "TRENDCAST_RATE_LIMIT_PREDICT": "100000/minute",
    }
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    api: Server | None = None
    try:
        api = start_server(tmp, "gunicorn", env, command=gunicorn, port=ports["api"])
        deadline = time.monotonic() + 60  # "ready" is one worker: wait for the second one's model
        while _loaded_workers(api) < 2:
            assert time.monotonic() < deadline, api.log_text()[-3000:]
            time.sleep(0.25)
        _wait_for(f"{scheduler_url}/metrics", scheduler, tmp / "scheduler.log", "trendcast schedule")
        _wait_for(f"{prometheus_url}/-/ready", prometheus, tmp / "prometheus.log", "prometheus")
        running = Stack(api, scheduler_url, prometheus_url)
        _wait_for_first_scrapes(running)
        yield running
    finally:
        for process in (prometheus, scheduler):
            _stop(process)
        if api is not None:
            api.stop()


def _ticker_predictions(client: httpx.Client, days: list[str]) -> None:
    for ticker in TICKERS:
        for day in days:
            response = client.post("/api/v1/predict", json={"ticker": ticker, "as_of": day})
            assert response.status_code == 200, response.text


def _traffic(api: Server) -> None:
    """Sequences (enough for the drift gauges), past ticker days (outcomes resolve), cache hits, errors, 429s."""
    client = api.client  # one keep-alive connection: one worker gets the sequences and computes drift
    rng = np.random.default_rng(0)
    for _ in range(8):
        items = [{"sequence": rng.normal(size=(WINDOW, len(FEATURES))).tolist()} for _ in range(64)]
        assert client.post("/api/v1/predict/batch", json={"items": items}).status_code == 200
    days = [str(day.date()) for day in sorted(set(tiny_bars()["date"]))[100:112]]  # long past: labels stored
    _ticker_predictions(client, days[:6])
    time.sleep(3)  # outcome counters are scraped at 0 first, then with the judged predictions
    _ticker_predictions(client, days[6:])
    _ticker_predictions(client, days[:2])  # asked again: cache hits
    assert client.post("/api/v1/predict", json={"ticker": "NOPE", "as_of": days[0]}).status_code == 404
    assert client.post("/api/v1/predict", json={"sequence": [[1.0]]}).status_code == 422
    statuses = [client.get("/api/v1/model/info", headers={"Connection": "close"}).status_code for _ in range(12)]
    assert 429 in statuses  # 12 requests over 2 workers: one of them saw more than its 5 per minute


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    _traffic(stack.api)
    return stack


def _exposed_names(*texts: str) -> set[str]:
    return {
        sample.name for text in texts for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_every_panel_and_alert_uses_metrics_the_service_or_scheduler_exposes(traffic: Stack) -> None:
    exposed = _exposed_names(
        traffic.api.client.get("/metrics").text, httpx.get(f"{traffic.scheduler_url}/metrics").text
    )
    exposed.add("up")  # Prometheus' own per-target series
    used = {name for _, expr in panel_queries() for name in METRIC.findall(expr)}
    used |= {name for rule in alert_rules().values() for name in METRIC.findall(rule["expr"])}
    assert used - exposed == set()


def eventually(probe: Callable[[], Any], timeout_s: float = 30) -> Any:
    """`probe()` once it is truthy (Prometheus scrapes and evaluates every second), else its last value."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


def _finite(result: list[dict[str, Any]]) -> bool:
    return bool(result) and all(math.isfinite(float(r["value"][1])) for r in result)


def test_prometheus_answers_every_panel_with_data(traffic: Stack) -> None:
    queries = panel_queries()

    def empty() -> list[tuple[str, str]]:
        return [(where, expr) for where, expr in queries if not traffic.query(expr)]

    eventually(lambda: not empty())
    assert empty() == [], "panels without data:\n" + "\n".join(f"{w}: {e}" for w, e in empty())
    by_title = dict(queries)
    # a number, not 0/0: outcomes were judged between two scrapes
    (hit_rate,) = eventually(lambda: _finite(rate := traffic.query(by_title["business / Realised hit rate"])) and rate)
    assert 0.0 <= float(hit_rate["value"][1]) <= 1.0
    (workers,) = traffic.query(by_title["infrastructure / Live workers"])
    (loaded,) = traffic.query(by_title["model / Workers with a model"])
    assert float(workers["value"][1]) == float(loaded["value"][1]) == 2.0


def _rules(stack: Stack) -> list[dict[str, Any]]:
    groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_loads_and_evaluates_every_alert_rule(stack: Stack) -> None:
    assert {rule["name"] for rule in _rules(stack)} == ALERTS
    unhealthy = eventually(lambda: not [rule for rule in _rules(stack) if rule.get("health") != "ok"])
    assert unhealthy, [(r["name"], r.get("health"), r.get("lastError")) for r in _rules(stack)]
    up = {r["metric"]["job"]: float(r["value"][1]) for r in stack.query("up")}
    assert up == {"trendcast-api": 1.0, "trendcast-scheduler": 1.0, "prometheus": 1.0}
    # the scheduler's registry holds no version (never retrained): the alert is on its way, `for` keeps it pending
    pending = eventually(lambda: stack.query('ALERTS{alertname="TrendcastNoRecentRetrain", alertstate="pending"}'))
    assert pending, stack.query("ALERTS")
