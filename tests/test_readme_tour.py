"""The READMEs' walkthroughs run as written: every shell block, in order, against a fresh
`marketplace serve` on the embedded default."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded_server import REPO_ROOT, embedded_server, newcomer_env

needs_jq = pytest.mark.skipif(shutil.which("jq") is None and not os.environ.get("CI"), reason="the tours use jq")


def shell_blocks(readme: str, start: str | None = None, end: str | None = None) -> str:
    text = (REPO_ROOT / readme).read_text()
    if start is not None and end is not None:
        text = text[text.index(start):text.index(end)]
    return "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL))


def run_tour(tmp_path: Path, script: str, *, fail_on_http_errors: bool) -> str:
    """Run `script` against a fresh server; returns its output (asserting it exited 0)."""
    assert "OPERATOR_KEY=mk_..." in script and "BASE=http://127.0.0.1:8000" in script
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the tours call .venv/bin/marketplace
    with embedded_server(tmp_path) as served:
        key = re.search(r"Operator API key \(shown once\): (mk_\S+)", served.output())
        assert key, served.output()
        script = script.replace("BASE=http://127.0.0.1:8000", f"BASE={served.base_url}")
        script = script.replace("OPERATOR_KEY=mk_...", f"OPERATOR_KEY={key.group(1)}")
        preamble = "set -euo pipefail\n"
        if fail_on_http_errors:
            preamble += 'curl() { command curl --fail-with-body "$@"; }\n'
        result = subprocess.run(["bash", "-c", preamble + script], cwd=tmp_path, env=newcomer_env(),
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@needs_jq
def test_readme_tour_runs_as_written_from_checkout_to_payout_and_a_clean_audit(tmp_path: Path) -> None:
    out = run_tour(tmp_path, shell_blocks("README.md", "## A tour", "## Configuration"), fail_on_http_errors=True)
    assert "Idempotent-Replayed" in out or "idempotent-replayed" in out
    assert '"status": "completed"' in out  # the payout batch
    assert out.count("ledger audit clean") == 2  # the tour's audit, then the demo's
    assert "Who sold, earned and was paid what" in out
    assert '"who": "Sam Shipper (fulfilment)"' in out  # the team tour: the audit log names the shipper


@needs_jq
def test_catalog_readme_sellers_first_five_minutes_runs_as_written(tmp_path: Path) -> None:
    # Not --fail: step 5 shows a 409 on purpose (a stock change below zero is refused).
    out = run_tour(tmp_path, shell_blocks("catalog/README.md"), fail_on_http_errors=False)
    assert '"status": "archived"' in out
    assert '"seller_name": "Ledgerly"' in out
    assert "whsec_" in out
