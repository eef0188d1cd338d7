"""The Shopify app as configured in the repository: ``shopify.app.toml`` and the theme app
extension beside it deploy with ``shopify app deploy``, and the app embed puts exactly the
widget's script tag on the storefront.

The extension is held to the rules Shopify CLI applies before it deploys one, read from
github.com/Shopify/cli, packages/app/src/cli/models/extensions/specifications/theme.ts
(folders, file types per folder, 10 MB bundle, 500 kB of Liquid) and
packages/app/src/cli/utilities/extensions/theme.ts (the files it bundles: ``*/*`` under the
extension, ``*.toml`` and a few editor files left out). The app file's webhook rules come from
.../specifications/validation/common.ts (a uri is a path starting with "/" or an https URL,
among others), .../validation/app_config_webhook.ts (topics or compliance topics in every
subscription, each compliance topic once) and .../validation/url_prepender.ts (a relative
uri is appended to application_url as it is).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cybergine.shopify.simulator.storefront import render_app_embed
from cybergine.shopify.theme_embed import (
    CHAT_EMBED_BLOCK,
    EXTENSION_HANDLE,
    METAFIELD_NAMESPACE,
    PLATFORM_ORIGIN_METAFIELD,
    WIDGET_KEY_METAFIELD,
)

ROOT = Path(__file__).resolve().parents[2]
APP_TOML = ROOT / "shopify.app.toml"
EXTENSION = ROOT / "extensions" / EXTENSION_HANDLE
WIDGET_JS = ROOT / "src" / "cybergine" / "channels" / "webchat" / "widget" / "widget.js"

REQUESTED_SCOPES = {"read_products", "read_content", "read_legal_policies"}
WEBHOOK_TOPICS = {
    "products/create",
    "products/update",
    "products/delete",
    "collections/create",
    "collections/update",
    "collections/delete",
    "app/uninstalled",
    "app_subscriptions/update",
    "bulk_operations/finish",
}
COMPLIANCE_TOPICS = {"customers/data_request", "customers/redact", "shop/redact"}
WEBHOOK_PATH = "/webhooks/shopify"
# Older Admin API versions hide collections that use Collection.sources.
OLDEST_API_VERSION = "2026-07"

# Shopify CLI's limits and file rules for a theme app extension (theme.ts, see above).
BUNDLE_LIMIT = 10 * 1024 * 1024
LIQUID_LIMIT = 500 * 1024
ALLOWED_SUFFIXES = {
    "assets": (".jpg", ".jpeg", ".json", ".js", ".css", ".png", ".svg", ".wasm"),
    "blocks": (".liquid",),
    "locales": (".json",),
    "snippets": (".liquid",),
}
LIQUID_FOLDERS = {"blocks", "snippets"}
# Files the CLI leaves out of the bundle (utilities/extensions/theme.ts).
IGNORED_NAMES = {
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "config.yml",
    ".gitkeep",
    ".shopifyignore",
}
BLOCK_TARGETS = {"section", "head", "body"}
APP_EMBED_TARGETS = {"head", "body"}
# Shopify CLI's APP_NAME_MAX_LENGTH (models/app/validation/common.ts).
APP_NAME_MAX_LENGTH = 30

SCHEMA = re.compile(r"{%-?\s*schema\s*-?%}(?P<json>.*?){%-?\s*endschema\s*-?%}", re.DOTALL)


def app_config() -> dict[str, object]:
    return tomllib.loads(APP_TOML.read_text(encoding="utf-8"))


# --- shopify.app.toml ---------------------------------------------------------------


def test_the_app_declares_its_identity_and_an_embedded_home_at_the_platform_origin() -> None:
    config = app_config()
    assert isinstance(config["client_id"], str)
    assert config["client_id"]
    assert isinstance(config["name"], str)
    assert 0 < len(config["name"]) <= APP_NAME_MAX_LENGTH
    assert config["embedded"] is True
    url = urlsplit(str(config["application_url"]))
    assert url.scheme == "https"
    assert url.netloc
    # An origin only: relative webhook uris are appended to it as they are.
    assert url.path in ("", "/")
    assert not url.query
    assert not url.fragment
    assert config["pos"] == {"embedded": False}


def test_the_app_requests_read_scopes_only_and_no_script_tags() -> None:
    access = app_config()["access_scopes"]
    assert isinstance(access, dict)
    scopes = [scope.strip() for scope in str(access["scopes"]).split(",")]
    assert set(scopes) == REQUESTED_SCOPES
    assert len(scopes) == len(REQUESTED_SCOPES)
    assert not any(scope.startswith("write_") for scope in scopes)
    assert "write_script_tags" not in scopes
    # Shopify-managed installation: scopes come from this file, not from an OAuth request.
    assert access.get("use_legacy_install_flow", False) is False
    auth = app_config()["auth"]
    assert isinstance(auth, dict)
    assert isinstance(auth["redirect_urls"], list)


def test_the_webhooks_are_pinned_to_a_current_api_version() -> None:
    webhooks = app_config()["webhooks"]
    assert isinstance(webhooks, dict)
    version = str(webhooks["api_version"])
    assert re.fullmatch(r"\d{4}-(01|04|07|10)", version), version
    assert version >= OLDEST_API_VERSION


def test_every_topic_and_compliance_topic_reaches_the_platform_webhook_route() -> None:
    config = app_config()
    webhooks = config["webhooks"]
    assert isinstance(webhooks, dict)
    subscriptions = webhooks["subscriptions"]
    assert isinstance(subscriptions, list)
    assert subscriptions
    topics: list[str] = []
    compliance: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for subscription in subscriptions:
        assert subscription.get("topics") or subscription.get("compliance_topics")
        uri = subscription["uri"]
        assert uri.startswith(("/", "https://")), uri
        resolved = str(config["application_url"]).rstrip("/") + uri if uri.startswith("/") else uri
        assert urlsplit(resolved).path == WEBHOOK_PATH
        for topic in subscription.get("topics", []):
            key = (topic, uri, subscription.get("filter", ""))
            assert key not in seen, f"{topic} is subscribed twice to {uri}"
            seen.add(key)
            topics.append(topic)
        compliance.extend(subscription.get("compliance_topics", []))
    assert set(topics) == WEBHOOK_TOPICS
    assert sorted(compliance) == sorted(COMPLIANCE_TOPICS), "each compliance topic exactly once"


def test_the_readme_says_which_scopes_the_app_requests_and_why_no_script_tags() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Shopify app", 1)[1].split("\n## ", 1)[0]
    for scope in [*REQUESTED_SCOPES, "write_script_tags"]:
        assert f"`{scope}`" in section
    assert "shopify app deploy" in section


# --- the theme app extension against Shopify CLI's rules ------------------------------


def cli_violations(extension: Path) -> list[str]:
    """What Shopify CLI would refuse in a theme app extension's directory."""
    problems: list[str] = []
    bundle = liquid = 0
    for path in sorted(extension.rglob("*")):
        if path.is_dir() or path.name in IGNORED_NAMES:
            continue
        parts = path.relative_to(extension).parts
        if len(parts) == 1:
            if path.suffix != ".toml":
                problems.append(f"{path.name}: files beside the toml are not part of the bundle")
            continue
        folder = parts[0]
        if folder not in ALLOWED_SUFFIXES:
            problems.append(f"{'/'.join(parts)}: unsupported folder {folder}")
            continue
        if len(parts) > 2:
            problems.append(f"{'/'.join(parts)}: the CLI bundles no nested folders")
            continue
        if not path.name.endswith(ALLOWED_SUFFIXES[folder]):
            problems.append(f"{'/'.join(parts)}: file type not allowed in {folder}")
        size = path.stat().st_size
        bundle += size
        if folder in LIQUID_FOLDERS:
            liquid += size
    if bundle > BUNDLE_LIMIT:
        problems.append(f"bundle of {bundle} bytes exceeds 10 MB")
    if liquid > LIQUID_LIMIT:
        problems.append(f"{liquid} bytes of Liquid exceed 500 kB")
    return problems


def test_the_extension_is_a_theme_extension_with_the_handle_the_dashboard_links_to() -> None:
    config = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text(encoding="utf-8"))
    assert config["type"] == "theme"
    # The CLI derives the handle from the name when none is given (extension-instance.ts).
    handle = config.get("handle") or re.sub(r"[^a-z0-9]+", "-", config["name"].lower()).strip("-")
    assert handle == EXTENSION_HANDLE


def test_the_extension_passes_the_cli_rules() -> None:
    assert cli_violations(EXTENSION) == []


def test_the_rules_catch_what_the_cli_refuses(tmp_path: Path) -> None:
    (tmp_path / "shopify.extension.toml").write_text('type = "theme"\n')
    (tmp_path / "README.md").write_text("notes")
    for folder in ("blocks", "snippets", "assets", "templates", "assets/deep"):
        (tmp_path / folder).mkdir()
    (tmp_path / "blocks" / "embed.html").write_text("<p></p>")
    (tmp_path / "templates" / "x.liquid").write_text("")
    (tmp_path / "assets" / "deep" / "a.js").write_text("")
    (tmp_path / "assets" / "font.woff2").write_bytes(b"\0")
    (tmp_path / "assets" / "big.png").write_bytes(b"\0" * (BUNDLE_LIMIT + 1))
    (tmp_path / "snippets" / "big.liquid").write_text("x" * (LIQUID_LIMIT + 1))

    problems = "\n".join(cli_violations(tmp_path))

    for expected in (
        "README.md: files beside",
        "blocks/embed.html: file type",
        "templates/x.liquid: unsupported folder",
        "assets/deep/a.js: the CLI bundles no nested",
        "assets/font.woff2: file type",
        "exceeds 10 MB",
        "exceed 500 kB",
    ):
        assert expected in problems


def block_schemas() -> dict[str, dict[str, object]]:
    schemas: dict[str, dict[str, object]] = {}
    for block in sorted((EXTENSION / "blocks").glob("*.liquid")):
        found = SCHEMA.findall(block.read_text(encoding="utf-8"))
        assert len(found) == 1, f"{block.name} needs exactly one schema"
        schema = json.loads(found[0])
        assert isinstance(schema, dict)
        schemas[block.stem] = schema
    return schemas


def test_every_block_schema_is_json_with_a_name_and_a_target() -> None:
    schemas = block_schemas()
    assert CHAT_EMBED_BLOCK in schemas
    for handle, schema in schemas.items():
        assert isinstance(schema.get("name"), str), handle
        assert schema["name"], handle
        assert schema.get("target") in BLOCK_TARGETS, handle


def test_the_chat_embed_is_an_app_embed_on_the_body_with_nothing_to_type() -> None:
    schema = block_schemas()[CHAT_EMBED_BLOCK]
    assert schema["target"] in APP_EMBED_TARGETS
    assert schema["target"] == "body"
    assert schema.get("settings", []) == []


# --- rendering the app embed ----------------------------------------------------------


def render_chat_embed(metafields: dict[str, str]) -> str:
    """The block as Shopify renders it, with the app's metafields in the ``cybergine``
    namespace (the simulated storefront's renderer)."""
    source = (EXTENSION / "blocks" / f"{CHAT_EMBED_BLOCK}.liquid").read_text()
    return render_app_embed(source, {METAFIELD_NAMESPACE: metafields})


def test_the_embed_loads_the_widget_from_the_platform_with_the_shops_widget_key() -> None:
    rendered = render_chat_embed(
        {
            WIDGET_KEY_METAFIELD: "wk_3f9a1c",
            PLATFORM_ORIGIN_METAFIELD: "https://cybergine.example.com",
        }
    )
    assert rendered == (
        '<script src="https://cybergine.example.com/widget.js" data-assistant="wk_3f9a1c" async>'
        "</script>"
    )
    # The attribute the widget reads its key from.
    assert 'getAttribute("data-assistant")' in WIDGET_JS.read_text(encoding="utf-8")


def test_the_embed_escapes_what_it_puts_in_attributes() -> None:
    rendered = render_chat_embed(
        {
            WIDGET_KEY_METAFIELD: 'wk_"><img src=x onerror=alert(1)>',
            PLATFORM_ORIGIN_METAFIELD: "https://cybergine.example.com",
        }
    )
    assert "<img" not in rendered
    assert 'data-assistant="wk_&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"' in rendered


@pytest.mark.parametrize(
    "metafields",
    [
        {},
        {PLATFORM_ORIGIN_METAFIELD: "https://cybergine.example.com"},
        {WIDGET_KEY_METAFIELD: "", PLATFORM_ORIGIN_METAFIELD: "https://cybergine.example.com"},
        {WIDGET_KEY_METAFIELD: "wk_3f9a1c"},
    ],
    ids=["nothing", "no widget key", "empty widget key", "no platform origin"],
)
def test_without_a_widget_key_or_platform_origin_the_embed_renders_nothing(
    metafields: dict[str, str],
) -> None:
    assert render_chat_embed(metafields) == ""
