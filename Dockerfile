# syntax=docker/dockerfile:1
# One image, three roles: the command picks one.
#   docker run IMAGE                 the web server (`serve` on 0.0.0.0:8000)
#   docker run IMAGE worker          a job worker
#   docker run IMAGE migrate         apply the database migrations, then exit
# (and any other `cybergine` command: `check`, `org create …`, `audit verify`, …).
# Settings come from the environment (CYBERGINE_*, see .env.example); nothing secret is
# in the image. docs/deployment.md says how it is built and run.
#
# BASE is Debian 12's slim image; Python is Debian's python3 (3.11), so security updates
# come from Debian. Where no registry is reachable, a root filesystem of the same release
# made with mmdebstrap and imported under this name builds the same image
# (docs/deployment.md, "Building without a registry").
ARG BASE=debian:bookworm-slim

# --- build: a virtual environment with the wheel and its pinned dependencies ----------------
FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Optional, for a build behind a private package index or a TLS-intercepting proxy (set
# only when passed): --build-arg PIP_INDEX_URL=… / PIP_CERT=<a CA bundle mounted at build>.
ARG PIP_INDEX_URL
ARG PIP_CERT
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/cybergine \
 && /opt/cybergine/bin/pip install --quiet --upgrade 'pip>=25'
WORKDIR /build
# The dependencies first (a layer that changes only with the pins), binary wheels only:
# no compiler in either stage.
COPY pyproject.toml constraints.txt ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/cybergine/bin/pip install --quiet --only-binary=:all: -c constraints.txt -r requirements.txt
# Then the wheel itself, built from the source as `pip wheel .` builds it anywhere.
COPY README.md LICENSE MANIFEST.in ./
COPY src ./src
RUN /opt/cybergine/bin/pip wheel --quiet --no-deps --wheel-dir /dist . \
 && /opt/cybergine/bin/pip install --quiet --no-deps /dist/cybergine-*.whl \
 && /opt/cybergine/bin/pip check \
 && /opt/cybergine/bin/pip uninstall --quiet --yes pip setuptools

# --- runtime: Debian's python3, the virtual environment, a user without privileges ---------
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cybergine \
 && useradd --system --uid 10001 --gid cybergine --home-dir /var/lib/cybergine \
      --shell /usr/sbin/nologin cybergine \
 && install -d -o cybergine -g cybergine -m 0700 /var/lib/cybergine
COPY --from=build /opt/cybergine /opt/cybergine
COPY deploy/docker/healthcheck.py /usr/local/lib/cybergine/healthcheck.py
ENV PATH=/opt/cybergine/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CYBERGINE_DATA_DIR=/var/lib/cybergine \
    CYBERGINE_METRICS_DIR=/tmp/cybergine-metrics
USER cybergine:cybergine
WORKDIR /var/lib/cybergine
# Organisation exports are written here by workers and read by web processes, so one
# volume is shared by both roles; with no database URL the embedded PostgreSQL lives here.
# Metric values stay in the container (they are named by process id, which is per
# container): each web container's /metrics adds up its own processes.
VOLUME ["/var/lib/cybergine"]
EXPOSE 8000
# The web role is healthy when /readyz answers 200 (database reachable and migrated, not
# draining); the other roles have no port, and are healthy while they run.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "/usr/local/lib/cybergine/healthcheck.py"]
# tini is PID 1: it forwards SIGTERM to cybergine (which drains) and reaps every child.
ENTRYPOINT ["tini", "--", "cybergine"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
