"""The config file as a document: YAML errors by line, ${VAR} and ${file:…} expanded, secrets masked."""

from __future__ import annotations

from pathlib import Path

from bridge.config import mask_secrets, settings_from_text
from tests.support.configs import BASE, problems


def test_yaml_syntax_errors_name_the_line() -> None:
    assert problems(BASE + "  broken: [\n")[0].startswith("bridge.yaml:15 (yaml):")


def test_env_interpolation_with_defaults_and_escapes() -> None:
    text = (
        BASE.replace("tok-123456", "${PP_TOKEN}")
        .replace("owner@example.com", "${PP_EMAIL:-fallback@example.com}")
        .replace('"{{ message }}"', '"cost: $$5 {{ message }} ${SUFFIX:-}"')
    )
    settings = settings_from_text(text, env={"PP_TOKEN": "from-env"})
    assert settings.proprofs.token == "from-env"
    assert settings.proprofs.account_email == "fallback@example.com"
    assert (
        settings.routes["contact"].mapping.templates["description"].source
        == "cost: $5 {{ message }} "
    )


def test_a_missing_variable_without_default_is_an_error_that_names_it() -> None:
    found = problems(BASE.replace("tok-123456", "${PP_TOKEN}"))
    assert found == [
        "bridge.yaml:3 proprofs.token: environment variable PP_TOKEN is not set "
        "(and has no default)"
    ]


def test_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token-value\n")
    settings = settings_from_text(BASE.replace("tok-123456", f"${{file:{secret}}}"), env={})
    assert settings.proprofs.token == "file-token-value"
    found = problems(BASE.replace("tok-123456", f"${{file:{tmp_path}/missing}}"))
    assert found[0].startswith("bridge.yaml:3 proprofs.token: cannot read")


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    secret = "sup3r-secret-value"
    found = problems(BASE.replace("tok-123456", secret).replace("kind: form", "kind: nope"))
    assert all(secret not in p for p in found)
    settings = settings_from_text(BASE.replace("tok-123456", secret), env={})
    assert secret not in repr(settings)
    masked = mask_secrets(
        {
            "proprofs": {"token": secret, "account_email": "x"},
            "routes": {"a": {"auth": {"bearer": secret}}},
        }
    )
    assert secret not in str(masked) and masked["proprofs"]["account_email"] == "x"
