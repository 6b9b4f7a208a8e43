"""ARCHITECTURE.md is the next maintainer's map: every file, folder and module it names exists
(a moved module fails here, not in a newcomer's hands), each rule the map promises is one row
pointing at module paths, and the names a row cites are found in the modules it points at."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MAP = (REPO_ROOT / "ARCHITECTURE.md").read_text()
ROOT_PACKAGES = ("kernel", "catalog", "affiliates", "orders", "payouts", "marketplace", "web")
DOMAINS = {"catalog": REPO_ROOT / "catalog", "affiliates": REPO_ROOT / "affiliates",
           "orders": REPO_ROOT / "platform" / "orders", "payouts": REPO_ROOT / "payouts"}
# The map's "same shape" table, file by file; what a domain lacks, and why (the map says so too).
SHAPE = ("models.py", "schemas.py", "service/__init__.py", "api", "tasks.py", "errors.py")
SHAPE_EXCEPTIONS = {("catalog", "tasks.py")}  # catalog has no background work: no task to list
# The rules issue 11 asked the map to find in one step (a row's text must match, and the row
# must point at a module path).
RULES = {
    "rounding": r"rounding",
    "allocation": r"allocat",
    "commission calculation": r"commission calculation",
    "attribution": r"^attribution",
    "holding periods": r"holding period",
    "state machines": r"state machine",
    "lock order": r"lock order",
    "idempotency": r"^idempotency",
}


def _cited(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _is_path(token: str) -> bool:
    return " " not in token and not token.startswith("..") and (
        token.endswith((".py", ".md", ".toml", "/")) or token.startswith((".ci/", "platform/", "tests/")))


def _resolve(token: str, near: Path | None = None) -> Path | None:
    """The file or folder a cited path means: from the repository root, from `platform/` (a
    package's own path, `marketplace/people_api.py`), or for a bare file name beside the first
    path of its table row; the shape table's paths (`service/__init__.py`) from a domain's folder."""
    token = token.rstrip("/") or "."
    candidates = [REPO_ROOT / token, REPO_ROOT / "platform" / token, *(d / token for d in DOMAINS.values())]
    if near is not None and "/" not in token:
        candidates.insert(0, near.parent / token)
    return next((c for c in candidates if c.exists()), None)


def _rule_rows() -> list[tuple[str, str]]:
    """(rule text, module cell) of the 'Where each rule lives' table."""
    section = MAP.split("## Where each rule lives", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and not set(cells[1]) <= {"-", " "} and cells[1] != "module":
            rows.append((cells[0], cells[1]))
    assert rows, "the rule table of ARCHITECTURE.md was not found"
    return rows


def test_every_path_the_map_names_exists() -> None:
    missing = []
    for token in _cited(MAP):
        if _is_path(token) and _resolve(token) is None and "/" in token.rstrip("/"):
            missing.append(token)
    for _rule, cell in _rule_rows():
        paths = [t for t in _cited(cell) if t.endswith(".py")]
        first = _resolve(paths[0]) if paths else None
        for token in paths:
            if _resolve(token, near=first) is None:
                missing.append(token)
    assert missing == [], f"ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_module_and_object_the_map_names_by_dotted_name_imports() -> None:
    missing = []
    for token in _cited(MAP):
        name = token.removesuffix("()").replace(":", ".")
        if " " in name or name.split(".")[0] not in ROOT_PACKAGES or "." not in name:
            continue
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(token)
            break
        else:
            missing.append(token)
    assert missing == [], f"ARCHITECTURE.md names modules or objects that do not exist: {missing}"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_one_row_of_the_map_pointing_at_a_module_path(rule: str) -> None:
    rows = [(text, cell) for text, cell in _rule_rows() if re.search(RULES[rule], text, re.IGNORECASE)]
    assert rows, f"no row of the ARCHITECTURE.md rule table is about {rule}"
    for _text, cell in rows:
        assert any(t.endswith(".py") for t in _cited(cell)), f"the {rule} row names no module path"


def test_the_names_a_rule_row_cites_are_in_the_modules_it_points_at() -> None:
    """`prorate` in the money row is found in platform/kernel/money.py, `start_holding_period` in
    settlement.py: the row is one step from the code."""
    wrong = []
    for text, cell in _rule_rows():
        paths = [t for t in _cited(cell) if t.endswith(".py")]
        first = _resolve(paths[0]) if paths else None
        sources = "".join(p.read_text() for t in paths if (p := _resolve(t, near=first)) is not None)
        for name in _cited(text) + _cited(cell):
            if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in sources:
                wrong.append(f"{name} (row: {text[:40]}...)")
    assert wrong == [], f"names the map cites that are not in the modules of their row: {wrong}"


def test_every_domain_has_the_shape_the_map_describes() -> None:
    shape = MAP.split("## The same shape in every domain", 1)[1].split("##", 1)[0]
    missing = []
    for name in SHAPE:
        assert f"`{name.split('/')[0]}" in shape, f"the shape table no longer lists {name}"
        for domain, folder in DOMAINS.items():
            found = (folder / name).exists() or (folder / f"{name}.py").exists()
            if not found and (domain, name) not in SHAPE_EXCEPTIONS:
                missing.append(f"{domain}: {name}")
    assert missing == [], f"domains without the shape of ARCHITECTURE.md: {missing}"
    for domain, name in SHAPE_EXCEPTIONS:
        row = next(line for line in shape.splitlines() if line.startswith(f"| `{name}`"))
        assert domain in row, f"the map's row for {name} says why {domain} has none"
