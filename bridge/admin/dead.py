"""The console's dead letters: filtered by route, error text and when they died, with how
many a replay sends shown before it runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from flask import Response, redirect, request, url_for

from ..intake.state import bridge
from ..outbox.records import DeadFilter, Submission
from . import blueprint, check_csrf, log, login_required, page


@blueprint.get("/dead")
@login_required
def dead() -> Response:
    """GET /admin/dead: dead letters by route, error text and when they died; how many a
    replay of those would send, before it runs."""
    return _dead_page(request.args)


@blueprint.post("/dead/replay")
@login_required
def replay_all() -> Response:
    """POST: send the dead submissions the filter takes again. The form carries the count
    it showed (``expected``): when the filter now takes another number, nothing is sent
    and the page shows the new count to confirm."""
    check_csrf()
    form = request.form
    try:
        which = DeadFilter.from_fields(form)
    except ValueError:
        return _dead_page(form)  # which says what is wrong with it
    store = bridge().store
    expected = form.get("expected", type=int)
    if expected is not None and store.count_dead(which) != expected:
        return _dead_page(
            form,
            problem=f"{expected} matched when you looked; the number has changed since. "
            "Check the list and replay again.",
        )
    count = store.replay_dead(which)
    log.info("console: replayed %d dead submission(s) (%s)", count, which.describe())
    args: dict[str, Any] = {k: form.get(k, "") for k in DEAD_FILTERS if form.get(k)}
    return cast(Response, redirect(url_for("admin.dead", replayed=count, **args), code=303))


#: The dead-letter filter's fields, in the page's query and form.
DEAD_FILTERS = ("route", "error", "since", "until")


def _dead_page(values: Any, problem: str | None = None) -> Response:
    state = bridge()
    fields = {k: (values.get(k) or "").strip() for k in DEAD_FILTERS}
    rows: Sequence[Submission] = []
    count = 0
    try:
        which: DeadFilter | None = DeadFilter.from_fields(values)
    except ValueError as exc:
        which, problem = None, str(exc)
    if which is not None:
        count = state.store.count_dead(which)
        rows = state.store.list_dead(which)
    return page(
        "admin/dead.html",
        rows=rows,
        count=count,
        described=which.describe() if which else "",
        fields=fields,
        routes=state.settings.routes,
        problem=problem,
        replayed=request.args.get("replayed", type=int),
    )
