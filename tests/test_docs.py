"""The documentation: the site builds with no warning, its configuration reference is exactly
what the loader accepts, and the README's and the docs' pictures are there."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import ConfigError, settings_from_text
from bridge.config import reference as configref
from bridge.init import NAMES, render
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, REDIS_URL, need_redis

ROOT = Path(__file__).resolve().parents[1]
PROBE = {"probe": [1]}  # a value of the wrong type for every key: refused, never unknown

BASE_ROUTES: dict[str, dict[str, Any]] = {
    "form": {
        "kind": "form",
        "fields": {
            "email": {"type": "email", "required": True},
            "message": {"type": "text", "required": True},
        },
    },
    "widget": {
        "kind": "widget",
        "fields": {
            "email": {"type": "email", "required": True},
            "message": {"type": "text", "required": True},
        },
    },
    "hook": {"kind": "hook", "ticket": {"email": "alerts@example.com"}},
}


def base(kind: str) -> dict[str, Any]:
    return {
        "proprofs": {"account_email": "owner@example.com", "token": "t0ken-for-the-docs-test"},
        "routes": {"r1": copy.deepcopy(BASE_ROUTES[kind])},
    }


def problems(config: dict[str, Any]) -> list[str]:
    try:
        settings_from_text(yaml.safe_dump(config), "bridge.yaml", env={})
    except ConfigError as exc:
        return exc.problems
    return []


def concrete(path: str) -> list[str]:
    """``routes.<route>.fields.<field>.type`` → the same path in the base config."""
    names = {"<route>": "r1", "<field>": "message", "<subscriber>": "s1"}
    return [names.get(part, part) for part in path.split(".")]


def put(config: dict[str, Any], parts: list[str], value: Any) -> None:
    where = config
    for part in parts[:-1]:
        if not isinstance(where.get(part), dict):
            where[part] = {}
        where = where[part]
    where[parts[-1]] = value


def kind_for(path: str) -> str:
    """A route kind that takes the key at ``path`` (by the reference's own word)."""
    keys = {key.path: key for section in configref.sections() for key in section.keys}
    parts = path.split(".")
    if parts[0] != "routes" or len(parts) < 3:
        return "hook"
    top = keys[".".join(parts[:3])]
    if top.kinds:
        return top.kinds[0]
    return "hook" if parts[2] in ("ticket", "auth") else "form"


@pytest.mark.parametrize("path", sorted(configref.accepted_paths()))
def test_every_key_in_the_reference_is_one_the_loader_knows(path: str) -> None:
    parts = concrete(path)
    config = base(kind_for(path))
    put(config, parts, PROBE)
    dotted = ".".join(parts)
    unknown = [p for p in problems(config) if f" {dotted}: unknown key" in p]
    assert unknown == []
    # The same place with a name the reference does not list is refused as unknown: the
    # probe above reached the level it claims to check.
    config = base(kind_for(path))
    put(config, [*parts[:-1], parts[-1] + "_x"], "x")
    assert any(f" {dotted}_x: unknown key" in p for p in problems(config))


def test_the_reference_reaches_every_config_schema_and_documents_each_key() -> None:
    sections = configref.sections()
    reached = {key.path for section in sections for key in section.keys}
    assert len(reached) > 100
    walked = {section.path for section in sections}
    # Every schema class the config module defines appears as a section of the reference.
    names = {schema.__name__ for schema in configref.schemas_in_config()}
    assert len(walked) == len(names) == len({section.path for section in sections})
    page = configref.markdown()
    for section in sections:
        for key in section.keys:
            assert key.about.strip(), key.path
            assert f"| `{key.name}` |" in page


def config_paths(data: Any, prefix: tuple[str, ...] = ()) -> set[str]:
    """The key paths a real config uses, with the names a user picks as placeholders."""
    accepted = configref.accepted_paths()
    found: set[str] = set()
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        if prefix == ("defaults",):
            path: tuple[str, ...] = ("routes", "<route>", str(key))
        elif prefix == ("routes",):
            path = ("routes", "<route>")
        elif prefix[-1:] == ("fields",) and prefix[:1] == ("routes",):
            path = (*prefix, "<field>")
        else:
            path = (*prefix, str(key))
        dotted = ".".join(path)
        if path[-1] not in ("<route>", "<field>"):
            found.add(dotted)
        if any(p.startswith(dotted + ".") for p in accepted):
            found |= config_paths(value, path)
    return found


def shipped_configs() -> dict[str, Any]:
    configs = {
        str(path.relative_to(ROOT)): yaml.safe_load(path.read_text())
        for path in [*(ROOT / "examples").glob("*.yaml"), ROOT / "deploy/bridge.example.yaml"]
    }
    written = render(forms=["contact"], alerts=sorted(NAMES), widgets=["support"])
    configs["bridge init (everything)"] = yaml.safe_load(written.text)
    return configs


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_every_key_a_shipped_config_uses_is_in_the_reference(name: str) -> None:
    used = config_paths(shipped_configs()[name])
    assert used, name
    assert used - configref.accepted_paths() == set()


def test_a_route_key_only_some_kinds_take_is_refused_elsewhere_and_not_inherited() -> None:
    config = base("form")
    config["routes"]["r1"]["resolved"] = "ticket"
    assert [p.split(" ", 1)[1] for p in problems(config)] == [
        "routes.r1.resolved: only hook routes take resolved"
    ]
    config = base("hook")
    config["defaults"] = {"spam": {"honeypot": "_hp"}, "resolved": "ticket"}
    config["routes"]["r2"] = copy.deepcopy(BASE_ROUTES["form"])
    settings = settings_from_text(yaml.safe_dump(config), "bridge.yaml", env={})
    assert settings.routes["r1"].alerts.resolved == "ticket"
    assert settings.routes["r1"].guards.honeypot is None
    assert settings.routes["r2"].guards.honeypot == "_hp"


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    """``mkdocs build --strict``: a broken link, a missing picture, a page left out of the
    navigation or a reference key with no text fails the build."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    reference = (site / "reference/config/index.html").read_text()
    for section in configref.sections():
        for key in section.keys:
            assert f"<code>{key.name}</code>" in reference, key.path
    commands = (site / "reference/cli/index.html").read_text()
    for command in ("bridge serve", "bridge init", "bridge doctor", "bridge try", "bridge worker"):
        assert f"<code>{command}</code>" in commands


def test_every_picture_is_shown_and_every_one_shown_is_there() -> None:
    shown: set[Path] = set()
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        text = page.read_text()
        targets = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
        targets += re.findall(r'<img src="([^"]+)"', text)  # sized pictures side by side
        for target in targets:
            picture = (page.parent / target).resolve()
            assert picture.is_file(), f"{page.name} shows {target}, which is not there"
            shown.add(picture)
    pictures = {p.resolve() for p in (ROOT / "docs/img").glob("*.png")}
    assert pictures and pictures - shown == set()
    # The hostile-CSS page is the widget's test, not a picture for people.
    assert not any("hostile" in p.name for p in pictures)


def test_the_readme_starts_with_the_user_and_its_links_work() -> None:
    text = (ROOT / "README.md").read_text()
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings == [
        "Two commands",
        "Install",
        "Your first route in five minutes",
        "Website contact forms",
        "Monitoring alerts",
        "The support widget",
        "Running it in production",
        "Documentation",
        "The ProProfs client, the emulator and the benchmarks",
    ]
    before_commands = text[: text.index("## Two commands")]
    assert "![" in before_commands  # what it is, and a picture, first
    for target in re.findall(r"\]\((?!https?://)([^)#\s]+)", text):
        assert (ROOT / target).exists(), f"the README links to {target}, which is not there"


def test_every_file_the_docs_name_is_in_the_repository() -> None:
    """A link, or a path under one of the repository's folders in backticks, names a file
    or folder that is here (a reader following it must not find nothing)."""
    tops = ("bridge/", "docs/", "examples/", "deploy/", "tests/", "bench/", "templates/")
    missing = []
    for page in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s#]+)", text):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
        for path in re.findall(r"`((?:" + "|".join(tops) + r")[\w./<>-]*)`", text):
            concrete = path.split("<", 1)[0]  # tests/fixtures/payloads/<name>/: the folder
            if not (ROOT / concrete).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []


def test_the_doctor_output_the_docs_show_is_what_doctor_prints(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """Each block marked ``<!-- output: bridge doctor -->`` is doctor's own output for the
    setup it describes (a SQLite store, Redis, a refused token, an Alertmanager route), with
    this machine's addresses put back as the docs write them; "…" stands for what varies."""
    need_redis()
    store = tmp_path / "bridge.db"
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"proprofs: {{base_url: '{emulator.base_url}', account_email: {ACCOUNT_EMAIL}, "
        f"token: not-the-token}}\nstore: 'sqlite:///{store}'\n"
        f"server: {{rate_limit_storage: '{REDIS_URL}'}}\n"
        "routes:\n  alertmanager: {kind: hook, source: alertmanager, "
        "auth: {bearer: doctor-bearer-token}, ticket: {email: alerts@example.com}}\n"
    )
    with SubmissionStore(f"sqlite:///{store}") as ready:
        ready.upgrade()
    printed = CliRunner().invoke(main, ["doctor", "--config", str(config)]).output
    for mine, theirs in (
        (str(store), "/var/lib/bridge/bridge.db"),
        (REDIS_URL, "redis://10.0.0.5:6379/0"),
        (emulator.base_url, "https://www.proprofsdesk.com/app/api/v1/"),
    ):
        printed = printed.replace(mine, theirs)
    actual = [" ".join(line.split()) for line in printed.splitlines()]
    blocks = 0
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for block in re.findall(
            r"<!-- output: bridge doctor -->\n```\n(.*?)\n```", page.read_text(), re.S
        ):
            blocks += 1
            shown = [" ".join(line.split()) for line in block.splitlines()]
            assert len(shown) == len(actual), (page.name, actual)
            for want, got in zip(shown, actual, strict=True):
                pattern = ".*".join(re.escape(part) for part in want.split("…"))
                assert re.fullmatch(pattern, got), (page.name, want, got)
    assert blocks >= 2


def test_the_attachments_block_the_docs_show_is_the_one_tickets_get() -> None:
    from bridge.attachments import Upload, description_block

    (shown,) = re.findall(
        r"<!-- output: attachments block -->\n```text\n(.*?)\n```",
        (ROOT / "docs" / "forms.md").read_text(),
        re.S,
    )
    upload = Upload(field="files", name="invoice.pdf", type="application/pdf", data=b"x" * 169_000)
    made = description_block([(upload, "https://bridge.example.com/files/WyJjb250YWN0IiwgInBi")])
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    assert re.fullmatch(pattern, made), made


def test_the_readme_names_every_serve_and_demo_flag() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"bridge {command.name} {flag}"
        for command in (main.commands["serve"], main.commands["demo"])
        for option in command.params
        for flag in option.opts
        if flag.startswith("--") and flag not in ("--config", "--help") and flag not in readme
    ]
    assert missing == []


def test_make_demo_installs_the_service_alone() -> None:
    """The first ticket should not wait for the test and docs tools to install."""
    makefile = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo: (.+)$", makefile, re.M)
    assert demo is not None and "$(STAMP)" not in demo.group(1)
    for target in demo.group(1).split():
        recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe is not None and "[dev]" not in recipe.group(1), target
