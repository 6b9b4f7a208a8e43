"""The built wheel is a complete product: installed on its own (not from this checkout), it
migrates a database with the migrations it carries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.embedded_server import REPO_ROOT, newcomer_env


def test_the_wheel_installed_apart_from_the_checkout_runs_db_upgrade(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO_ROOT), "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = newcomer_env() | {"PYTHONPATH": str(target), "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}

    where = subprocess.run([sys.executable, "-c", "import marketplace, migrations; print(marketplace.__file__, "
                            "migrations.__file__)"], env=env, cwd=tmp_path, capture_output=True, text=True)
    upgraded = subprocess.run([sys.executable, "-m", "marketplace.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert all(path.startswith(str(target)) for path in where.stdout.split()), where.stdout + where.stderr
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "schema at head" in upgraded.stdout
    assert os.path.getsize(tmp_path / "fresh.db") > 0
    # The docs page's Swagger UI ships inside the package (it is served from there, not a CDN).
    ui = target / "marketplace" / "static" / "swagger-ui"
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"} <= {p.name for p in ui.iterdir()}
