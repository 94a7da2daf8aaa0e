"""A small working config, and the problems a config text is refused with."""

from __future__ import annotations

import textwrap

import pytest

from bridge.config import ConfigError, Settings, settings_from_text
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN

BASE = """\
proprofs:
  account_email: owner@example.com
  token: tok-123456
routes:
  contact:
    kind: form
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    ticket:
      subject: "Contact: {{ message|truncate(40) }}"
      description: "{{ message }}"
      email: "{{ email }}"
"""


#: A form route that takes files.
FILE_FORM = """
  contact:
    kind: form
    fields:
      email: {type: email, required: true}
      message: {type: text, required: true}
      files: {type: file}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Every problem ``text`` is refused with (it must be refused)."""
    with pytest.raises(ConfigError) as info:
        settings_from_text(textwrap.dedent(text), "bridge.yaml", env or {})
    return info.value.problems


def settings_with(emulator: EmulatorServer, store_url: str, rest: str) -> Settings:
    """Settings for the emulator's account and the store at ``store_url``, plus ``rest``
    (YAML: routes, and any other sections)."""
    head = (
        f'proprofs: {{base_url: "{emulator.base_url}", account_email: {ACCOUNT_EMAIL}, '
        f'token: {TOKEN}}}\nstore: "{store_url}"\n'
    )
    return settings_from_text(head + textwrap.dedent(rest).lstrip("\n"), env={})
