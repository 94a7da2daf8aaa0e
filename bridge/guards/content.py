"""Content rules: what a submission says, scored against a route's spam rules.

Each rule that matches adds its score; at the route's threshold the submission is
quarantined (kept, no ticket) instead of delivered. Nothing is refused on content alone:
a person a rule is wrong about can be released from the console.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.settings import ContentRules

LINK_RE = re.compile(r"https?://|\bwww\.", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """What the content rules found: a score and what matched."""

    score: float
    matched: tuple[str, ...]  # what matched, readable: "keyword: casino", "links: 4 > 2"

    def over(self, threshold: float) -> bool:
        """Whether the score reaches ``threshold``."""
        return self.score >= threshold


@functools.cache
def _disposable() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _domain_in(domain: str, listed: Iterable[str]) -> str | None:
    for entry in listed:
        if domain == entry or domain.endswith("." + entry):
            return entry
    return None


def judge(
    rules: ContentRules,
    data: Mapping[str, Any],
    *,
    email: str | None,
    message_fields: Iterable[str] = (),
) -> Verdict:
    """Score ``data`` (the loaded fields) and the requester's ``email`` against ``rules``.
    ``message_fields`` are the fields the minimum length counts (all text if none)."""
    text = "\n".join(_texts(dict(data)))
    lowered = text.lower()
    scores = rules.scores
    score = 0.0
    matched: list[str] = []

    def add(rule: str, what: str) -> None:
        nonlocal score
        score += scores.get(rule, 0.0)
        matched.append(f"{rule}: {what}")

    for keyword in rules.keywords:
        if keyword in lowered:
            add("keyword", keyword)
    for pattern in rules.patterns:
        if _compiled(pattern).search(text):
            add("pattern", pattern)
    if rules.max_links is not None:
        links = len(LINK_RE.findall(text))
        if links > rules.max_links:
            add("links", f"{links} > {rules.max_links}")
    domain = (email or "").rpartition("@")[2].strip().lower().rstrip(".")
    if domain:
        blocked = _domain_in(domain, rules.blocked_domains)
        if blocked is not None:
            add("blocked_domain", blocked)
        if rules.disposable_domains and _domain_in(domain, _disposable_parents(domain)):
            add("disposable_domain", domain)
    if rules.min_length:
        counted = [data[name] for name in message_fields if isinstance(data.get(name), str)]
        length = len("".join(counted).strip()) if message_fields else len(text.strip())
        if length < rules.min_length:
            add("too_short", f"{length} < {rules.min_length} characters")
    return Verdict(score, tuple(matched))


def _disposable_parents(domain: str) -> list[str]:
    """The domain and each parent of it that is on the disposable list."""
    listed = _disposable()
    parts = domain.split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1) if ".".join(parts[i:]) in listed]
