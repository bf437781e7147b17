"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz.hostile_hooks): besides the bodies the schema
describes, send the same bodies with a lone surrogate in one of their strings, with one of their
values nested hundreds of lists deep, or with one of their keys made of a surrogate. The service
must answer each with a 4xx, never a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

DEPTH = 600


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], change: Any) -> Any:
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, change) if k == head else v) for k, v in value.items()}
    return [(_replaced(v, rest, change) if i == head else v) for i, v in enumerate(value)]


def _nested(value: Any) -> Any:
    for _ in range(DEPTH):
        value = [value]
    return value


def _hostile(body: Any, choice: int, kind: str) -> Any:
    paths = _paths(body)
    path = paths[choice % len(paths)]
    if kind == "surrogate":
        return _replaced(body, path, lambda v: (v if isinstance(v, str) else "x") + "\ud800")
    if kind == "deep":
        return _replaced(body, path, _nested)
    if isinstance(body, dict):
        return {**body, "\udfff": "x"}
    return body


# Form bodies (the token endpoint) travel as UTF-8 bytes: a lone surrogate cannot even be sent.
FORM_PATHS = frozenset({"/v1/auth/token"})


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> Any:
    path = getattr(getattr(ctx, "operation", None), "path", "")
    if body is None or isinstance(body, bytes | str) or path in FORM_PATHS:
        return st.just(body)
    return st.one_of(
        st.just(body),
        st.builds(_hostile, st.just(body), st.integers(0, 10_000), st.sampled_from(["surrogate", "deep", "key"])),
    )
