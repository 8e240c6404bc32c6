"""The `ray up` cluster file (infrastructure/ray/cluster-aws.yaml) against the installed Ray's own schema, and
against what trendcast needs of a cluster: the driver's Ray and Python versions, a dashboard left off, an object
store in shared memory, and one MLflow server every node reaches."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy_tools import REPO

ray = pytest.importorskip("ray")

CLUSTER_FILE = REPO / "infrastructure" / "ray" / "cluster-aws.yaml"


def _config() -> dict[str, Any]:
    data = yaml.safe_load(CLUSTER_FILE.read_text())
    assert isinstance(data, dict)
    return data


def test_cluster_file_passes_rays_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(_config()))


def test_schema_check_can_fail() -> None:
    from jsonschema import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = _config()
    broken["available_node_types"]["worker"]["unknown_field"] = 1
    with pytest.raises(ValidationError):
        validate_config(prepare_config(broken))


def test_image_matches_the_drivers_ray_and_python() -> None:
    image = _config()["docker"]["image"]
    match = re.fullmatch(r"rayproject/ray:(?P<ray>[\d.]+)-py(?P<py>\d+)-cpu", image)
    assert match, image
    assert match["ray"] == ray.__version__
    assert match["py"] == f"{sys.version_info.major}{sys.version_info.minor}"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'"ray\[[a-z,]+\]=={re.escape(ray.__version__)}"', pyproject)


def test_nodes_start_without_dashboard_and_share_one_mlflow_server() -> None:
    config = _config()
    head = " ".join(config["head_start_ray_commands"])
    assert "--include-dashboard=false" in head
    assert "mlflow server" in head and "--port 5000" in head
    assert any("TRENDCAST_MLFLOW_TRACKING_URI=http://$RAY_HEAD_IP:5000" in c for c in config["worker_setup_commands"])
    assert any("--shm-size" in option for option in config["docker"]["run_options"])
    setup = " ".join(config["setup_commands"])
    assert "torch==2.13.0" in setup and "[distributed]" in setup
    mounted = Path(config["file_mounts"]["/home/ray/trendcast"])
    assert (REPO / mounted / "pyproject.toml").is_file()
