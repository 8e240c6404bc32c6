"""The notebooks under `notebooks/` run top to bottom on the bundled data, so they cannot rot.

Each notebook is executed with nbclient in a fresh kernel of *this* interpreter: ipykernel writes a kernelspec into
a temp folder that points at `sys.executable`, so a stale or foreign "python3" kernelspec on the machine (or none,
on a fresh clone) cannot pick another environment. The kernel gets MPLBACKEND=Agg and a temp TRENDCAST_DATA_DIR.
A cell that raises fails the test (warnings inside the kernel do not). A fast check keeps the committed files free
of stored outputs, so diffs stay small.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import zmq  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (after the skips above)
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "trendcast-test"
CELL_TIMEOUT_S = 300


def test_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_eda.ipynb", "02_feature_analysis.ipynb", "03_model_evaluation.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    stored = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not stored, f"{path.name}: cells {stored} keep outputs; clear them (Kernel > Restart & Clear Output)"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernelspec that starts ipykernel with the interpreter running the tests (ipykernel's own spec writer)."""
    from ipykernel.kernelspec import write_kernel_spec

    folder = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(folder / KERNEL_NAME, overrides={"display_name": "trendcast tests"})
    return KernelSpecManager(kernel_dirs=[str(folder)])


def kernel_manager(specs: KernelSpecManager) -> KernelManager:
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    if manager.has_trait("transport_encryption") and zmq.has("curve"):
        manager.transport_encryption = "auto"  # CurveZMQ keys, so the kernel does not warn about plain TCP
    return manager


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(
    path: Path, kernel_specs: KernelSpecManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TRENDCAST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets the debugger's frozen-modules note
    notebook = nbformat.read(path, as_version=4)
    manager = kernel_manager(kernel_specs)
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},  # the kernel's working directory
    )
    started = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised:\n{exc}")
    finally:
        if manager.has_kernel:  # a client given a manager leaves the kernel running
            manager.shutdown_kernel(now=True)
    elapsed = time.perf_counter() - started
    print(f"{path.name}: {elapsed:.1f} s")
    executed = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in executed), f"{path.name}: not every code cell ran"
    errors = [o for cell in executed for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
