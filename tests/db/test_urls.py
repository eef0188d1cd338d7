import pytest

from cybergine.db.urls import libpq_url, redacted, sqlalchemy_url, with_database


def test_sqlalchemy_url_names_the_psycopg_driver() -> None:
    url = sqlalchemy_url("postgresql://u:p@db.example:5432/app")
    assert url.drivername == "postgresql+psycopg"
    assert url.database == "app"


def test_postgres_scheme_alias_is_accepted() -> None:
    assert libpq_url("postgres://u:p@h/app").startswith("postgresql://u:p@h")


def test_socket_urls_keep_their_host_directory() -> None:
    url = with_database("postgresql://postgres:@/postgres?host=/run/pg", "cybergine")
    assert url.startswith("postgresql://postgres:@/cybergine?host=")
    assert "/run/pg" in url.replace("%2F", "/")


def test_redacted_hides_the_password() -> None:
    assert "secret" not in redacted("postgresql://u:secret@h/app")


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        sqlalchemy_url("sqlite:///x.db")
