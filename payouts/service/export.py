"""The manual rail's bank export: one CSV and one JSON file per batch, for an operator to wire.

While the batch runs, each chunk's lines are appended to the CSV in the same transaction that
records those items paid, under the batch row lock. The batch row keeps the CSV's committed
length (`export_bytes`): a writer first cuts the file back to it, so lines written by a worker
that died before its commit are dropped, and never duplicated when the resumed run writes those
items again. Appending keeps a 10,000-payee batch linear (rewriting per chunk would be quadratic).

When the batch completes, both files are rewritten from the items (atomically: a temporary file,
then `os.replace`), so the final export lists exactly the paid items, each once, whatever happened
on the way; the JSON document (count, total, items) is written then.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.clock import clock
from kernel.money import exponent
from kernel.settings import Settings
from payouts.models import ItemStatus, PayoutBatch, PayoutItem

COLUMNS = ["reference", "payout_item_id", "payee_type", "payee_id", "payee_name", "bank_reference",
           "currency", "amount_minor", "amount"]


def paths(settings: Settings, batch_id: object) -> tuple[Path, Path]:
    base = Path(settings.payout_export_dir)
    return base / f"payout-batch-{batch_id}.csv", base / f"payout-batch-{batch_id}.json"


def major_units(amount: int, currency: str) -> str:
    """Minor units as a plain decimal string ("1234.05"; "-0.70"; JPY "1234"), by integer arithmetic."""
    digits = exponent(currency)
    sign, value = ("-" if amount < 0 else ""), abs(amount)
    if digits == 0:
        return f"{sign}{value}"
    whole, cents = divmod(value, 10**digits)
    return f"{sign}{whole}.{cents:0{digits}d}"


def _row(item: Any) -> dict[str, Any]:
    """One line, from a PayoutItem or a row with the same column names."""
    return {
        "reference": item.rail_reference, "payout_item_id": str(item.id), "payee_type": item.owner_type,
        "payee_id": str(item.owner_id), "payee_name": item.payee_name or "", "bank_reference": item.destination,
        "currency": item.currency, "amount_minor": item.amount, "amount": major_units(item.amount, item.currency),
    }


# Text that payees typed (their name, their bank reference) goes into a file operators open in a
# spreadsheet: a cell starting like a formula would run as one (CSV injection). Such cells get a
# leading apostrophe, which spreadsheets show as text, and `read` takes it off again.
_TYPED_COLUMNS = ("payee_name", "bank_reference")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text_cell(value: Any) -> Any:
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def _from_text_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


_TYPED_AT = [COLUMNS.index(name) for name in _TYPED_COLUMNS]


def _csv(rows: Iterable[dict[str, Any]], header: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # lists, not DictWriter: 100,000 lines a batch
    if header:
        writer.writerow(COLUMNS)
    lines = [[row[name] for name in COLUMNS] for row in rows]
    for line in lines:
        for at in _TYPED_AT:
            line[at] = _as_text_cell(line[at])
    writer.writerows(lines)
    return buffer.getvalue().encode()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _paid_rows(session: Session, batch: PayoutBatch) -> list[dict[str, Any]]:
    # Plain rows, not ORM objects: this reads every paid item of the batch.
    rows = session.execute(
        select(PayoutItem.id, PayoutItem.rail_reference, PayoutItem.owner_type, PayoutItem.owner_id,
               PayoutItem.payee_name, PayoutItem.destination, PayoutItem.currency, PayoutItem.amount)
        .where(PayoutItem.batch_id == batch.id, PayoutItem.status == ItemStatus.PAID).order_by(PayoutItem.id)
    )
    return [_row(row) for row in rows]


def append(session: Session, settings: Settings, batch: PayoutBatch, recording: Sequence[Any]) -> Path:
    """Append the lines of `recording` (items being recorded paid in this transaction, with their
    rail_reference set) to the batch's CSV. The caller holds the batch row lock and commits."""
    csv_path, _ = paths(settings, batch.id)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    committed = batch.export_bytes or 0
    if committed and (not csv_path.exists() or csv_path.stat().st_size < committed):
        # Someone moved or cut the file: rebuild what is committed, then carry on.
        _atomic_write(csv_path, _csv(_paid_rows(session, batch), header=True))
        committed = csv_path.stat().st_size
    with csv_path.open("a+b") as handle:
        handle.truncate(committed)  # drop lines of a writer that died before committing them
        handle.seek(committed)
        handle.write(_csv((_row(item) for item in recording), header=committed == 0))
        handle.flush()
        os.fsync(handle.fileno())
        batch.export_bytes = handle.tell()
    batch.export_path = str(csv_path)
    return csv_path


def finalize(session: Session, settings: Settings, batch: PayoutBatch) -> Path:
    """Rewrite the CSV and write the JSON document from the paid items (the batch is completing)."""
    rows = _paid_rows(session, batch)
    csv_path, json_path = paths(settings, batch.id)
    data = _csv(rows, header=True)
    _atomic_write(csv_path, data)
    document = {
        "batch_id": str(batch.id), "currency": batch.currency, "generated_at": clock.now().isoformat(),
        "count": len(rows), "total_minor": sum(r["amount_minor"] for r in rows), "items": rows,
    }
    _atomic_write(json_path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    batch.export_bytes = len(data)
    batch.export_path = str(csv_path)
    return csv_path


def read(settings: Settings, batch_id: object) -> list[dict[str, str]] | None:
    """The CSV's lines (None when there is no export yet), for reconciliation."""
    csv_path, _ = paths(settings, batch_id)
    if not csv_path.exists():
        return None
    with csv_path.open(encoding="utf-8", newline="") as handle:
        return [{**line, **{name: _from_text_cell(line[name]) for name in _TYPED_COLUMNS}}
                for line in csv.DictReader(handle)]


def download(settings: Settings, batch: PayoutBatch, kind: str) -> bytes | None:
    """The batch's export as an operator downloads it: the CSV's committed part (while the batch
    runs, the lines recorded paid so far; never the lines of a writer that has not committed), or
    the JSON document (written when the batch completes). None when there is none (yet)."""
    csv_path, json_path = paths(settings, batch.id)
    if kind == "json":
        return json_path.read_bytes() if json_path.exists() else None
    if not batch.export_bytes or not csv_path.exists():
        return None
    with csv_path.open("rb") as handle:
        return handle.read(batch.export_bytes)
