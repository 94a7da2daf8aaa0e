"""What the app's views share, kept on ``app.extensions["bridge"]``, and how they reach it."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from itsdangerous import URLSafeSerializer

from .. import attachments
from ..config.settings import Settings
from ..guards.ratelimit import RateLimits
from ..observability import Metrics, RedactFilter, settings_secrets
from ..outbox.store import SubmissionStore
from ..proprofs.client import ProProfsClient
from ..signing import INCIDENT_SALT, STORM_SALT
from .deadline import BodyDeadlines

log = logging.getLogger(__name__)


@dataclass
class Bridge:
    """What the app's views need, kept on ``app.extensions["bridge"]``."""

    settings: Settings
    store: SubmissionStore
    rate_limits: RateLimits
    signing_key_source: Callable[[], str]
    client_factory: Callable[[], ProProfsClient] | None = None
    certificate_fetcher: Callable[[str], bytes] | None = None
    url_opener: Callable[[str], int] | None = None
    metrics: Metrics | None = None
    deadlines: BodyDeadlines = field(default_factory=BodyDeadlines)
    clock: Callable[[], float] = time.time  # alert steering's clock (tests move it)
    _client: ProProfsClient | None = None

    @functools.cached_property
    def signing_key(self) -> str:
        """Signs every link and token the bridge hands out (read once per process)."""
        return self.signing_key_source()

    @property
    def incident_links(self) -> URLSafeSerializer:
        """Signs incident page links; rotating the secret key revokes them all."""
        return URLSafeSerializer(self.signing_key, salt=INCIDENT_SALT)

    @property
    def storm_links(self) -> URLSafeSerializer:
        """Signs the links to a storm window's full list of held-back groups."""
        return URLSafeSerializer(self.signing_key, salt=STORM_SALT)

    @functools.cached_property
    def redact(self) -> RedactFilter:
        """Replaces every configured secret in a text (captured payloads)."""
        return RedactFilter(settings_secrets(self.settings))

    @property
    def links(self) -> attachments.Links:
        """The signer of attachment download links."""
        return attachments.Links(self.signing_key)

    @property
    def client(self) -> ProProfsClient:
        """The ProProfs client for reads made at intake (made lazily, once per process)."""
        if self._client is None:
            assert self.client_factory is not None
            self._client = self.client_factory()
        return self._client


def public_link(path: str) -> str:
    """``path`` on the bridge's configured address (``server.public_url``); the path alone
    without one: never the address a request named in its Host header, which anyone sets."""
    base = bridge().settings.server.public_url
    return base + path if base else path


def bridge() -> Bridge:
    """This app's :class:`Bridge`."""
    state: Bridge = current_app.extensions["bridge"]
    return state
