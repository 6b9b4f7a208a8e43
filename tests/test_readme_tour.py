"""Every README command runs as written: each ```bash block of each README, in order, against a
fresh `marketplace serve` on the embedded default, in a directory laid out like the checkout.

A block can be marked by an HTML comment on the line above its fence (blank lines between are fine):

* `<!-- not run: why -->`: skipped (an install command, `.ci/run` itself, a long benchmark, a
  command that starts the server the test starts itself); `test_blocks_that_are_not_run` lists them.
* `<!-- errors expected: why -->`: shows an error answer on purpose, so its `curl`s run without
  `--fail-with-body` (every other `curl` fails the run on an HTTP error).
* `<!-- fresh server: why -->`: this block and the ones after it run against a new server in a new
  directory (a README that says "start over").

In the blocks, `http://127.0.0.1:8000` is the test server's address and `mk_...` the operator key it
printed; the shell runs with `set -euo pipefail`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.embedded_server import REPO_ROOT, embedded_server, newcomer_env

needs_jq = pytest.mark.skipif(shutil.which("jq") is None and not os.environ.get("CI"), reason="the tours use jq")

READMES = ["README.md", "catalog/README.md", "affiliates/README.md", "payouts/README.md", "loadtests/README.md"]
MARKER = re.compile(r"<!--\s*(not run|errors expected|fresh server):\s*(.+?)\s*-->")
FENCE = re.compile(r"^```bash\s*$")

# Blocks that are not run, by README and first line (a new one must be added here too, so a
# reviewer sees it): why each cannot run inside the test.
NOT_RUN = {
    ("README.md", "# 1. Set up and run the platform on the embedded default (a SQLite file, in-process background"),
    ("README.md", 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start'),
    ("affiliates/README.md", ".venv/bin/marketplace serve                     # prints the operator key: mk_..."),
    ("loadtests/README.md", "python -m loadtests.bench --duration 30            # prints one JSON line last"),
    ("loadtests/README.md",
     "python -m loadtests.bench --chaos --duration 30    # one JSON line last; exit 1 when an invariant breaks"),
    ("loadtests/README.md", "createdb -h 127.0.0.1 -U postgres hist && U=postgresql+psycopg://postgres@127.0.0.1:5432/hist"),
    ("README.md", "createdb -h 127.0.0.1 -U postgres hist_growth && U=postgresql+psycopg://postgres@127.0.0.1:5432/hist_growth"),
    ("payouts/README.md", "createdb -h 127.0.0.1 -U postgres payouts100k"),
    ("loadtests/README.md", "createdb -h 127.0.0.1 -U postgres payouts100k"),
    ("loadtests/README.md", ".venv/bin/python -m pytest tests/payouts/test_rate_limit.py -s -q   # prints the figure"),
}

# What each walkthrough's output must show, beyond every command exiting 0.
EXPECTED = {
    "README.md": ["idempotent-replayed", '"status": "completed"', "Who sold, earned and was paid what",
                  '"who": "Sam Shipper (fulfilment)"', '"approval":"approved"', '"email":"r***@acme.example"',
                  '"receivable":-4999,"invoiced":4999', '{"status":"paid","paid_at":true}',
                  '{"email":"ada@example.com","confirmed_at":"', '"shipping_method":"Standard"'],
    "catalog/README.md": ['"status": "archived"', '"seller_name": "Ledgerly"', "whsec_"],
    "affiliates/README.md": ['"attribution": "click"', '"name": "Router Pro"'],
    "payouts/README.md": ['"status":"completed"', "reconciled: 4 paid items, 4 at the rail", "ledger audit clean"],
    "loadtests/README.md": ["Aggregated"],
}


@dataclass(frozen=True)
class Block:
    readme: str
    line: int
    code: str
    marker: str | None
    reason: str | None

    @property
    def first_line(self) -> str:
        return self.code.splitlines()[0] if self.code else ""


def bash_blocks(readme: str) -> list[Block]:
    lines = (REPO_ROOT / readme).read_text().splitlines()
    blocks = []
    n = 0
    while n < len(lines):
        if not FENCE.match(lines[n]):
            n += 1
            continue
        above = n - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marked = MARKER.search(lines[above]) if above >= 0 else None
        end = next(i for i in range(n + 1, len(lines)) if lines[i].startswith("```"))
        blocks.append(Block(readme, n + 1, "\n".join(lines[n + 1:end]) + "\n",
                            marked.group(1) if marked else None, marked.group(2) if marked else None))
        n = end + 1
    return blocks


def sessions(blocks: list[Block]) -> list[list[Block]]:
    """The blocks to run, one list per server: a `fresh server` block starts the next one."""
    runs: list[list[Block]] = [[]]
    for block in blocks:
        if block.marker == "not run":
            continue
        if block.marker == "fresh server" and runs[-1]:
            runs.append([])
        runs[-1].append(block)
    return [run for run in runs if run]


PREAMBLE = """set -euo pipefail
README_CURL_FAIL=1
curl() { if [ "$README_CURL_FAIL" = 1 ]; then command curl --fail-with-body "$@"; else command curl "$@"; fi; }
"""


def _checkout_like(directory: Path) -> None:
    """The READMEs run from the checkout: its files, but a database and exports of its own."""
    for entry in REPO_ROOT.iterdir():
        if entry.name in (".git", "marketplace.db", "payout-exports") or entry.name.endswith(".json"):
            continue
        if entry.name == ".venv":
            (directory / ".venv").symlink_to(Path(sys.prefix))
        elif not entry.name.startswith("."):
            (directory / entry.name).symlink_to(entry)


def run_session(directory: Path, blocks: list[Block]) -> str:
    """Run `blocks` in one shell against a fresh server in `directory`; returns what it printed
    (stdout, then stderr: Locust reports on stderr)."""
    directory.mkdir(parents=True)
    _checkout_like(directory)
    with embedded_server(directory) as served:
        key = re.search(r"Operator API key \(shown once\): (mk_\S+)", served.output())
        assert key, served.output()
        script = PREAMBLE
        for block in blocks:
            code = block.code.replace("http://127.0.0.1:8000", served.base_url).replace("mk_...", key.group(1))
            expects_errors = block.marker == "errors expected"
            script += f"# --- {block.readme}:{block.line}\n"
            script += ("README_CURL_FAIL=0\n" + code + "README_CURL_FAIL=1\n") if expects_errors else code
        result = subprocess.run(["bash", "-c", script], cwd=directory, env=newcomer_env(),
                                capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    _left_behind_is_git_ignored(directory)
    return result.stdout + result.stderr


def _left_behind_is_git_ignored(directory: Path) -> None:
    """What a walkthrough writes in the working directory (order.json, the database, the exports)
    must not show up as new files in a reader's checkout."""
    written = [entry.name + ("/" if entry.is_dir() else "") for entry in directory.iterdir()
               if not entry.is_symlink() and entry.name != "serve.log"]
    if not (REPO_ROOT / ".git").exists() or not written:
        return
    ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "--no-index", *written],
                             capture_output=True, text=True).stdout.split()
    assert sorted(ignored) == sorted(written), f"not git-ignored: {sorted(set(written) - set(ignored))}"


@needs_jq
@pytest.mark.parametrize("readme", READMES)
def test_every_bash_block_of_the_readme_runs_as_written(readme: str, tmp_path: Path) -> None:
    runs = sessions(bash_blocks(readme))
    assert runs, f"{readme} has no block to run"
    output = "".join(run_session(tmp_path / f"run{n}", blocks) for n, blocks in enumerate(runs))
    for expected in EXPECTED[readme]:
        assert expected.lower() in output.lower(), f"{readme}: {expected!r} not in\n{output[-4000:]}"
    if readme == "README.md":
        assert output.count("ledger audit clean") == 2  # the tour's audit, then the demo's


def test_blocks_that_are_not_run_are_marked_with_a_reason_and_listed() -> None:
    not_run = [block for readme in READMES for block in bash_blocks(readme) if block.marker == "not run"]
    for block in not_run:
        assert block.reason and len(block.reason) > 10, block
    assert {(block.readme, block.first_line) for block in not_run} == NOT_RUN



def test_every_readme_of_the_checkout_is_toured() -> None:
    """A README added anywhere (a new domain's, the pages') is run too, not forgotten here."""
    found = sorted(str(path.relative_to(REPO_ROOT)) for path in REPO_ROOT.rglob("README*.md")
                   if not {".venv", "node_modules", ".git"} & set(path.relative_to(REPO_ROOT).parts)
                   and "static" not in path.relative_to(REPO_ROOT).parts)
    assert found == sorted(READMES)
