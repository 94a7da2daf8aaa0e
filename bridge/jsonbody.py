"""JSON from strangers, read with a nesting limit.

``json.loads`` recurses once per level: a body of a few thousand ``[`` raises
``RecursionError``, and a body just under the interpreter's limit parses but then
breaks whatever walks it next (templates, marshmallow, ``json.dumps``). Every
JSON the bridge reads from a request goes through :func:`loads`, which refuses
anything nested deeper than :data:`MAX_DEPTH` with a :class:`ValueError`.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

#: Deeper than any sender's real payload (Sentry's events, the deepest we know, reach ~12).
MAX_DEPTH = 64


class TooDeep(ValueError):
    """The JSON nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"it nests deeper than {MAX_DEPTH} levels")
        self.msg = str(self)


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` that raises :class:`TooDeep` (a ``ValueError``) for deep nesting."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if isinstance(text, str):
        opened = text.count("[") + text.count("{")
    else:
        opened = text.count(b"[") + text.count(b"{")
    if opened > MAX_DEPTH and depth(value) > MAX_DEPTH:  # fewer brackets cannot nest deeper
        raise TooDeep()
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, level) for child in children)
    return deepest


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads`, so ``request.get_json`` is bounded too."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
