"""The README's tour runs as written: every shell block of it, in order, against a fresh
`marketplace serve` on the embedded default, with curl failing on any 4xx/5xx answer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded_server import REPO_ROOT, embedded_server, newcomer_env


def tour_script() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    tour = readme[readme.index("## A tour"):readme.index("## Configuration")]
    return "\n".join(re.findall(r"```bash\n(.*?)```", tour, flags=re.DOTALL))


@pytest.mark.skipif(shutil.which("jq") is None and not os.environ.get("CI"), reason="the tour uses jq")
def test_readme_tour_runs_as_written_from_checkout_to_payout_and_a_clean_audit(tmp_path: Path) -> None:
    script = tour_script()
    assert "OPERATOR_KEY=mk_..." in script and "BASE=http://127.0.0.1:8000" in script
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the tour calls .venv/bin/marketplace
    with embedded_server(tmp_path) as served:
        key = re.search(r"Operator API key \(shown once\): (mk_\S+)", served.output())
        assert key, served.output()
        script = script.replace("BASE=http://127.0.0.1:8000", f"BASE={served.base_url}")
        script = script.replace("OPERATOR_KEY=mk_...", f"OPERATOR_KEY={key.group(1)}")
        preamble = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n"
        result = subprocess.run(
            ["bash", "-c", preamble + script], cwd=tmp_path, env=newcomer_env(), capture_output=True, text=True,
            timeout=300,
        )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    out = result.stdout
    assert "Idempotent-Replayed" in out or "idempotent-replayed" in out
    assert '"status": "completed"' in out  # the payout batch
    assert out.count("ledger audit clean") == 2  # the tour's audit, then the demo's
    assert "Who sold, earned and was paid what" in out
