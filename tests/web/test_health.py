from pathlib import Path

from cybergine.app import create_app
from cybergine.settings import load_settings
from tests.support.server import LiveServer


def _keys(key_env: dict[str, str]) -> dict[str, str]:
    return {
        "secret_key": key_env["CYBERGINE_SECRET_KEY"],
        "encryption_keys": key_env["CYBERGINE_ENCRYPTION_KEYS"],
    }


def test_healthz_answers_while_the_process_is_up(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_is_503_before_migrations(
    empty_database_url: str, tmp_path: Path, key_env: dict[str, str]
) -> None:
    settings = load_settings(database_url=empty_database_url, data_dir=tmp_path, **_keys(key_env))
    with LiveServer(create_app(settings, run_worker=False)) as server, server.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["database"] == "reachable"
    assert body["migration"] is None
    assert body["expected_migration"]


def test_readyz_is_503_when_the_database_is_unreachable(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    settings = load_settings(
        database_url=f"postgresql://nobody@/nothing?host={tmp_path}&connect_timeout=2",
        data_dir=tmp_path,
        **_keys(key_env),
    )
    with LiveServer(create_app(settings, run_worker=False)) as server, server.client() as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
