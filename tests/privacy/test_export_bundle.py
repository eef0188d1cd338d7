"""A customer's export as a portable bundle (policy §14, portability): a ZIP with their
JSON, their files, and a manifest of SHA-256 hashes signed by the server, which anyone
can check with the key the server publishes, and which `cybergine privacy verify-export`
checks. A changed file, a changed manifest or another key is caught."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from cybergine.accounts.models import Role
from cybergine.cli import cli
from cybergine.privacy.bundle import verify_bundle
from tests.privacy.test_customer_rights import ADA, _chat, _customer_id
from tests.support.factories import make_api_key
from tests.support.whatsapp import Shop

# Another server's key: the signature must not verify with it.
OTHER_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
"""


def _rewritten(archive: bytes, path: str, content: bytes) -> bytes:
    """``archive`` with ``path`` replaced by ``content``."""
    source = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, content if name == path else source.read(name))
    return out.getvalue()


async def test_the_bundle_holds_their_data_and_files_under_a_signed_manifest(
    shop: Shop,
) -> None:
    await _chat(shop)
    ada = _customer_id(shop, ADA)
    response = shop.api.get(f"/api/v1/customers/{ada}/export/bundle")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert f'filename="customer-{ada}.zip"' in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    archive = response.content

    bundle = zipfile.ZipFile(io.BytesIO(archive))
    data = json.loads(bundle.read("customer.json"))
    assert data["customer"]["id"] == ada
    [photo] = [
        message["attachment"]
        for conversation in data["conversations"]
        for message in conversation["messages"]
        if message["attachment"]
    ]
    assert "data" not in photo  # the bytes are a file of the bundle, not base64 in JSON
    assert photo["file"] == f"attachments/{photo['id']}.png"
    assert bundle.read(photo["file"]) == b"\x89PNG-ada"
    manifest = json.loads(bundle.read("manifest.json"))
    assert {entry["path"] for entry in manifest["files"]} == {"customer.json", photo["file"]}

    # The key in the bundle is the one the server publishes, to anyone.
    published = shop.api.get("/.well-known/cybergine-signing-key", headers={"Authorization": ""})
    assert published.status_code == 200
    assert bundle.read("signing-key.pem").decode() == published.text
    assert verify_bundle(archive, published.text) == []

    # Every change is caught: a file, the manifest, the signing key.
    changed_file = _rewritten(archive, photo["file"], b"\x89PNG-not-ada")
    assert verify_bundle(changed_file, published.text) == [
        f"{photo['file']}: its SHA-256 is not the manifest's"
    ]
    forged = json.dumps({**manifest, "files": manifest["files"][:1]}).encode()
    assert verify_bundle(_rewritten(archive, "manifest.json", forged), published.text) == [
        "the manifest's signature does not verify"
    ]
    assert verify_bundle(archive, OTHER_KEY) == ["the manifest's signature does not verify"]
    assert verify_bundle(b"not a zip") == ["not a ZIP archive"]


async def test_the_command_line_checks_a_bundle(shop: Shop, tmp_path: Path) -> None:
    await _chat(shop)
    archive = shop.api.get(f"/api/v1/customers/{_customer_id(shop, ADA)}/export/bundle").content
    key = tmp_path / "key.pem"
    key.write_text(shop.api.get("/.well-known/cybergine-signing-key").text)
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(archive)
    bad.write_bytes(_rewritten(archive, "customer.json", b"{}"))
    runner = CliRunner()

    verified = runner.invoke(cli, ["privacy", "verify-export", str(good), "--public-key", str(key)])
    assert verified.exit_code == 0, verified.output
    assert "verified: good.zip" in verified.output

    refused = runner.invoke(cli, ["privacy", "verify-export", str(bad), "--public-key", str(key)])
    assert refused.exit_code == 1
    assert "customer.json: its SHA-256 is not the manifest's" in refused.output

    missing = runner.invoke(cli, ["privacy", "verify-export", str(tmp_path / "none.zip")])
    assert missing.exit_code == 2
    assert "No such file" in missing.output


async def test_an_agent_gets_no_bundle(shop: Shop) -> None:
    """Only those who handle customer data (owners, admins) may take it away."""
    await _chat(shop)
    agent = await make_api_key(shop.database, shop.organisation_id, role=Role.AGENT)
    response = shop.api.get(
        f"/api/v1/customers/{_customer_id(shop, ADA)}/export/bundle",
        headers={"Authorization": f"Bearer {agent}"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
