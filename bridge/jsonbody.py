"""JSON from strangers, read with a nesting limit and no numbers Python cannot hold.

``json.loads`` recurses once per level: a body of a few thousand ``[`` raises
``RecursionError``, and a body just under the interpreter's limit parses but then
breaks whatever walks it next (templates, marshmallow, ``json.dumps``). Every
JSON the bridge reads from a request goes through :func:`loads`, which refuses
anything nested deeper than :data:`MAX_DEPTH` or holding more than :data:`MAX_ELEMENTS`
values with a :class:`ValueError`, checked on the text before any object is built, as it does
integers past Python's digit limit (``int()`` refuses them), floats that overflow to
infinity, the NaN/Infinity literals JSON does not have, and lone surrogate escapes
(``"\\ud800"``), which decode to a string no encoder will write.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from flask.json.provider import DefaultJSONProvider

#: Deeper than any sender's real payload (Sentry's events, the deepest we know, reach ~12).
MAX_DEPTH = 64
#: Values in one document: an Alertmanager group of 1,000 alerts holds about 30,000.
MAX_ELEMENTS = 100_000


class Unacceptable(ValueError):
    """Text that parses, or would, as JSON but that the bridge will not read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.msg = reason


class TooDeep(Unacceptable):
    """The JSON nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"it nests deeper than {MAX_DEPTH} levels")


class TooWide(Unacceptable):
    """The JSON holds more than :data:`MAX_ELEMENTS` values."""

    def __init__(self) -> None:
        super().__init__(f"it holds more than {MAX_ELEMENTS:,} values")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise Unacceptable(f"the number {shown} is too large for a float")
    return value


def _no_constant(name: str) -> Any:
    raise Unacceptable(f"it holds {name}, which JSON does not allow")


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` that raises :class:`Unacceptable` (a ``ValueError``) for deep nesting,
    integers past Python's digit limit, floats that overflow, and NaN or Infinity."""
    if isinstance(text, bytes | bytearray):
        # json.loads would decode with "surrogatepass", letting encoded surrogates through.
        text = bytes(text).decode(json.detect_encoding(text))
    check_shape(text)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise TooDeep() from None
    except (json.JSONDecodeError, UnicodeDecodeError, Unacceptable):
        raise
    except ValueError:  # int("9" * 5000): past sys.get_int_max_str_digits()
        raise Unacceptable(
            f"a number in it has more than {sys.get_int_max_str_digits()} digits"
        ) from None
    # An escaped pair is one character; an escape alone decodes to a lone surrogate.
    if _SURROGATE.search(text) and not _is_text(value):
        raise Unacceptable("it holds a lone \\u surrogate escape, which is not text")
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Every byte but the four brackets, for ``bytes.translate`` to delete in one C loop.
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def check_shape(text: str) -> None:
    """Refuse too many values or too deep a nesting before a single object is built.

    Works on the text at C speed: strings are cut out (their brackets and commas are
    words), then innermost ``[]`` and ``{}`` pairs are removed one level a pass.
    """
    opened = text.count("[") + text.count("{")
    if opened <= MAX_DEPTH and text.count(",") < MAX_ELEMENTS:
        return  # counted with the strings in: fewer cannot be more without them
    skeleton = _STRING.sub("", text)
    if skeleton.count(",") + skeleton.count("[") + skeleton.count("{") >= MAX_ELEMENTS:
        raise TooWide()
    brackets = skeleton.encode("utf-8", "ignore").translate(None, _NOT_BRACKET)
    for _ in range(MAX_DEPTH):
        reduced = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if not reduced or len(reduced) == len(brackets):
            return  # fully taken apart, or not JSON (the decoder says where)
        brackets = reduced
    raise TooDeep()


#: What ``json.loads(text, parse_float=…, parse_constant=…)`` makes for every call, made
#: once (it keeps no state between documents; the stdlib shares its own the same way).
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def _is_text(value: Any) -> bool:
    """No string in ``value`` (keys included) holds a lone surrogate, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


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
        """Parse JSON within the shape limits."""
        return loads(s)
