"""Content rules: each adds its score, and the scores add up to a verdict."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import ContentRules
from bridge.guards.content import judge


def rules(**changes: Any) -> ContentRules:
    return ContentRules(**changes)


@pytest.mark.parametrize(
    ("changes", "data", "email", "score", "matched"),
    [
        ({"keywords": ("casino",)}, {"message": "Best CASINO bonus"}, "a@x.org", 3, "keyword"),
        (
            {"patterns": (r"(?i)seo\s+services",)},
            {"message": "cheap SEO  services"},
            "a@x.org",
            3,
            "pattern",
        ),
        ({"max_links": 1}, {"message": "http://a.example www.b.example"}, "a@x.org", 5, "links"),
        (
            {"blocked_domains": ("spam.example",)},
            {"message": "hi there"},
            "x@mail.spam.example",
            10,
            "blocked_domain",
        ),
        (
            {"disposable_domains": True},
            {"message": "hi there"},
            "x@mailinator.com",
            5,
            "disposable_domain",
        ),
        ({"min_length": 10}, {"message": "hey"}, "a@x.org", 3, "too_short"),
    ],
)
def test_each_rule_adds_its_score(
    changes: dict[str, Any], data: dict[str, Any], email: str, score: float, matched: str
) -> None:
    verdict = judge(rules(**changes), data, email=email, message_fields=["message"])
    assert verdict.score == score
    assert [m.split(":")[0] for m in verdict.matched] == [matched]
    clean = judge(
        rules(**changes),
        {"message": "A normal question about my order"},
        email="a@x.org",
        message_fields=["message"],
    )
    assert clean.score == 0 and clean.matched == ()


def test_scores_add_up_and_can_be_set_per_rule() -> None:
    both = rules(keywords=("casino", "bonus"), max_links=0, scores={"keyword": 1.0, "links": 2.5})
    verdict = judge(both, {"message": "casino bonus at https://x.example"}, email="a@x.org")
    assert verdict.score == 4.5
    assert verdict.matched == ("keyword: casino", "keyword: bonus", "links: 1 > 0")
    assert not verdict.over(5) and verdict.over(4.5)
