"""Building blocks shared by the fake Stripe resources: errors, ids, the object store, form decoding,
parameter coercion, list pagination and `expand[]`."""

from __future__ import annotations

import copy
import fnmatch
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Json = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits
_NO_LIST_KEYS = frozenset({"metadata"})  # maps whose keys may look like list indexes


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


def now() -> int:
    return int(time.time())


class StripeError(Exception):
    """An API error rendered as Stripe's `{"error": {...}}` body.

    `replayable=False` marks errors raised before the endpoint "begins executing" (parameter
    validation, unknown ids in the URL): Stripe does not store those under an idempotency key.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: Mapping[str, Any] | None = None,
        replayable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.extra = dict(extra or {})
        self.replayable = replayable

    def body(self, request_id: str | None = None) -> Json:
        error: Json = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if request_id:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, code: str | None = None, param: str | None = None) -> StripeError:
    """A business-rule failure inside an endpoint (stored under an idempotency key)."""
    return StripeError(400, message, code=code, param=param)


def bad_param(message: str, *, param: str, code: str = "parameter_invalid") -> StripeError:
    """A validation failure before the endpoint executes (not stored under an idempotency key)."""
    return StripeError(400, message, code=code, param=param, replayable=False)


def no_such(kind: str, obj_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(status, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param, replayable=False)


# --- form decoding --------------------------------------------------------------------------


def _key_parts(key: str) -> list[str]:
    """`a[b][0]` -> ["a", "b", "0"]; `expand[]` -> ["expand", ""]."""
    head, sep, rest = key.partition("[")
    parts = [head]
    if sep:
        parts.extend(rest.rstrip("]").split("]["))
    return parts


def _listify(value: Any, key: str = "") -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if key not in _NO_LIST_KEYS and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def parse_form(body: str) -> Json:
    """Decode Stripe's form encoding (`metadata[k]=v`, `expand[0]=x`, `expand[]=x`, `a[b][c]=d`)
    into nested dicts and lists. Leaf values stay strings, as on the wire."""
    root: Json = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = _key_parts(key)
        node = root
        for depth, part in enumerate(parts):
            name = str(len(node)) if part == "" else part
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    listified: Json = _listify(root)
    return listified


# --- parameter coercion ---------------------------------------------------------------------


def check_params(params: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str] = ()) -> None:
    allowed_set = set(allowed) | {"expand"}
    for name in params:
        if name not in allowed_set:
            raise bad_param(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
    for name in required:
        if params.get(name) in (None, ""):
            raise bad_param(f"Missing required param: {name}.", param=name, code="parameter_missing")


def get_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_param(f"Invalid string: {value!r}", param=name)
    return value


def get_int(params: Mapping[str, Any], name: str, *, minimum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not raw.lstrip("-").isdigit():
        raise bad_param(f"Invalid integer: {raw}", param=name, code="parameter_invalid_integer")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise bad_param(f"This value must be greater than or equal to {minimum}.", param=name)
    return value


def get_bool(params: Mapping[str, Any], name: str) -> bool | None:
    raw: object = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise bad_param(f"Invalid boolean: {raw}", param=name)
    return raw == "true"


def get_enum(params: Mapping[str, Any], name: str, choices: Iterable[str]) -> str | None:
    value = get_str(params, name)
    options = list(choices)
    if value is not None and value not in options:
        raise bad_param(
            f"Invalid {name}: must be one of {', '.join(options)}", param=name, code="parameter_invalid_string"
        )
    return value


def apply_metadata(target: Json, params: Mapping[str, Any]) -> None:
    """Stripe metadata semantics: merge keys, `metadata[k]=` unsets k, `metadata=` unsets all."""
    if "metadata" not in params:
        return
    raw = params["metadata"]
    if raw == "":
        target["metadata"] = {}
        return
    if not isinstance(raw, dict):
        raise bad_param("Invalid object", param="metadata")
    merged = dict(target.get("metadata") or {})
    for key, value in raw.items():
        if not isinstance(value, str):
            raise bad_param("Invalid metadata value: must be a string", param=f"metadata[{key}]")
        if len(key) > 40 or len(value) > 500:
            raise bad_param("Metadata keys are limited to 40 and values to 500 characters.", param="metadata")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise bad_param("Metadata can have up to 50 keys.", param="metadata")
    target["metadata"] = merged


def format_amount(amount: int, currency: str) -> str:
    return f"${amount / 100:.2f}" if currency == "usd" else f"{amount / 100:.2f} {currency.upper()}"


# --- object store ---------------------------------------------------------------------------


@dataclass
class Stored:
    kind: str
    owner: str | None  # None: the platform account; "acct_...": a connected account (Stripe-Account)
    obj: Json


class Store:
    """All objects by id, in creation order. Objects are mutable dicts owned by the store; responses
    are deep copies."""

    def __init__(self) -> None:
        self._items: dict[str, Stored] = {}

    def clear(self) -> None:
        self._items.clear()

    def add(self, kind: str, obj: Json, owner: str | None = None, *, key: str | None = None) -> Json:
        self._items[key or obj["id"]] = Stored(kind, owner, obj)
        return obj

    def find(self, obj_id: str) -> Stored | None:
        return self._items.get(obj_id)

    def get_kind(self, obj_id: str) -> str | None:
        item = self._items.get(obj_id)
        return item.kind if item else None

    def get(self, kind: str, obj_id: str, owner: str | None, *, param: str = "id", status: int = 404) -> Json:
        item = self._items.get(obj_id)
        if item is None or item.kind != kind or (item.owner != owner and kind != "account"):
            raise no_such(kind, obj_id, param=param, status=status)
        return item.obj

    def all(self, kind: str) -> list[Json]:
        return [item.obj for item in self._items.values() if item.kind == kind]

    def visible(self, kind: str, owner: str | None) -> list[Json]:
        return [item.obj for item in self._items.values() if item.kind == kind and item.owner == owner]


_CREATED_OPS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


def list_page(kind: str, items: list[Json], params: Mapping[str, Any], url: str, filters: Iterable[str] = ()) -> Json:
    """A Stripe list object over `items` (creation order in, newest first out), with equality filters
    (`fnmatch` patterns for event `type`), `created`, `limit`, `starting_after` and `ending_before`."""
    selected = list(reversed(items))
    for name in filters:
        wanted = get_str(params, name)
        if wanted is not None:
            selected = [o for o in selected if fnmatch.fnmatchcase(str(o.get(name)), wanted)]
    created = params.get("created")
    if isinstance(created, str):
        exact = get_int(params, "created")
        selected = [o for o in selected if o["created"] == exact]
    elif isinstance(created, dict):
        for op, raw in created.items():
            bound = get_int({op: raw}, op)
            if op not in _CREATED_OPS or bound is None:
                raise bad_param(f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
            selected = [o for o in selected if _CREATED_OPS[op](o["created"], bound)]
    limit = get_int(params, "limit", minimum=1) or 10
    if limit > 100:
        raise bad_param("This value must be less than or equal to 100.", param="limit")
    ids = [o["id"] for o in selected]
    after, before = get_str(params, "starting_after"), get_str(params, "ending_before")
    if after is not None:
        if after not in ids:
            raise no_such(kind, after, param="starting_after", status=400)
        start = ids.index(after) + 1
        page, has_more = selected[start : start + limit], start + limit < len(selected)
    elif before is not None:
        if before not in ids:
            raise no_such(kind, before, param="ending_before", status=400)
        end = ids.index(before)
        page, has_more = selected[max(0, end - limit) : end], end - limit > 0
    else:
        page, has_more = selected[:limit], limit < len(selected)
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def expand(obj: Json, paths: Any, store: Store) -> Json:
    """A deep copy of `obj` with `expand[]` paths (dotted, `data.` for lists) replaced by objects."""
    result = copy.deepcopy(obj)
    if paths in (None, ""):
        return result
    for path in paths if isinstance(paths, list) else [paths]:
        _expand_into(result, str(path).split("."), store, str(path))
    return result


def _expand_into(node: Any, parts: list[str], store: Store, path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_into(item, parts, store, path)
        return
    if not isinstance(node, dict) or not parts:
        return
    key, rest = parts[0], parts[1:]
    value = node.get(key)
    if isinstance(value, str):
        found = store.find(value)
        if found is None:
            raise bad_param(f"This property cannot be expanded ({path}).", param="expand")
        node[key] = value = copy.deepcopy(found.obj)
    elif key not in node:
        raise bad_param(f"This property cannot be expanded ({path}).", param="expand")
    _expand_into(value, rest, store, path)
