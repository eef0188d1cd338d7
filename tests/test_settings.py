from pathlib import Path

import pytest
from pydantic import ValidationError

from cybergine.settings import load_settings


def test_no_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CYBERGINE_DATABASE_URL", raising=False)
    assert load_settings().embedded


def test_blank_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERGINE_DATABASE_URL", "")
    assert load_settings().embedded


def test_settings_come_from_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CYBERGINE_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("CYBERGINE_DATA_DIR", str(tmp_path / "x" / ".." / "y"))
    monkeypatch.setenv("CYBERGINE_EMBEDDED_WORKER", "false")
    settings = load_settings()
    assert not settings.embedded
    assert settings.data_dir == (tmp_path / "y").resolve()
    assert settings.embedded_worker is False


def test_nonsense_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERGINE_WORKER_CONCURRENCY", "0")
    with pytest.raises(ValidationError, match="worker_concurrency"):
        load_settings()


@pytest.mark.parametrize("niceness", ["-1", "20", "low"])
def test_a_niceness_outside_unix_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, niceness: str
) -> None:
    # Raising a priority takes privileges, and the kernel has no niceness past 19.
    monkeypatch.setenv("CYBERGINE_WORKER_NICE", niceness)
    with pytest.raises(ValidationError, match="worker_nice"):
        load_settings()


def test_the_local_model_runs_on_the_threads_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from cybergine.knowledge.embeddings import LocalMiniLM
    from cybergine.knowledge.providers import embedding_provider

    monkeypatch.setenv("CYBERGINE_EMBEDDING_THREADS", "3")
    provider = embedding_provider(load_settings())
    assert isinstance(provider, LocalMiniLM)
    assert provider._threads == 3  # what the onnxruntime session is built with

    monkeypatch.setenv("CYBERGINE_EMBEDDING_THREADS", "0")
    with pytest.raises(ValidationError, match="embedding_threads"):
        load_settings()
