"""Signing in to the operator console in a test client."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

PASSWORD = "correct horse battery"


def token(html: str) -> str:
    """The CSRF token of a console page's form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def log_in(client: FlaskClient) -> None:
    """Sign in with :data:`PASSWORD`."""
    page = client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"password": PASSWORD, "csrf_token": token(page.get_data(as_text=True))},
    )
    assert response.status_code == 303
