#!/usr/bin/env bash
# Run the dbkeep test suite with the services it needs.
#
# Usage: scripts/test.sh [extra cargo test args...]
#
# What it does:
#   1. Installs missing tools with apt-get (PostgreSQL server and client, age,
#      sqlite3, zstd, gzip, and Chromium with chromedriver for the browser
#      test of the web admin). Needs root or sudo only when something is missing.
#   2. Main PostgreSQL server (trust auth, superuser "postgres"):
#      uses the one answering on 127.0.0.1:5432 if there is one; otherwise
#      starts the Debian cluster if it allows trust on 127.0.0.1; otherwise
#      starts a private throwaway cluster.
#   3. MariaDB on 127.0.0.1:3306 (root without a password): the one running, else
#      started from Debian's installation.
#   4. Password PostgreSQL server (scram-sha-256 over TCP): always a private
#      throwaway cluster on 127.0.0.1:55432 (or the next free port), unless a
#      server already there accepts the expected password and rejects others.
#   5. Runs `cargo test --all-targets --no-fail-fast "$@"` (every crate of the
#      workspace: they are all default members), then stops and deletes every
#      throwaway cluster, also on failure or Ctrl-C.
#
# Environment:
#   DBKEEP_TEST_PG_URL            use this main server as-is (skips step 2 detection)
#   DBKEEP_TEST_PG_PORT           port of the main server to look for/start (default 5432)
#   DBKEEP_TEST_PG_AUTH_PORT      port for the password server (default 55432)
#   DBKEEP_TEST_PG_AUTH_PASSWORD  its password (default dbkeep-test-secret)
#   DBKEEP_TEST_MYSQL_PORT        port of the MariaDB server (default 3306; root, no password)
#   DBKEEP_TEST_CHROMIUM          Chromium binary for the browser test (default /usr/bin/chromium)
#   DBKEEP_TEST_CHROMEDRIVER      matching chromedriver (default /usr/bin/chromedriver)
#   DBKEEP_TEST_CMD               command to run instead of `cargo test --all-targets --no-fail-fast`
#                                 (extra args are still appended), e.g. 'cargo nextest run'
#   CI=true                       a PostgreSQL server or a browser that cannot be provided
#                                 is an error instead of a warning (tests are never
#                                 skipped in CI)

set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

is_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }

# A service we could not provide fails the run in CI; locally the tests that
# need it decide what to do (they may skip), so only warn.
service_missing() {
    if is_ci; then
        die "$* (CI=true: refusing to run the tests without it)"
    fi
    warn "$*; the tests that need it will fail"
}

if [[ $EUID -eq 0 ]]; then
    SUDO=()
else
    SUDO=(sudo)
fi

# ---------------------------------------------------------------------------
# Cleanup of everything this script started. Runs on any exit.
# ---------------------------------------------------------------------------
CLUSTERS=() # "datadir|tmpdir" of throwaway clusters to stop and delete

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local status=$?
    local entry datadir tmpdir
    for entry in "${CLUSTERS[@]}"; do
        datadir=${entry%%|*}
        tmpdir=${entry#*|}
        if [[ -f "$datadir/postmaster.pid" ]]; then
            as_pg "$PG_BIN/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf -- "$tmpdir"
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------
find_pg_bin() {
    # Newest installed major version (Debian layout), else whatever is on PATH.
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null |
        sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get; install them by hand"
    if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "missing packages ($*); run as root or install sudo"
    fi
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
PG_BIN=$(find_pg_bin)
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/pgbench" || ! -x "$PG_BIN/pg_ctl" ]]; then
    missing+=(postgresql)
fi
for tool in psql pg_dump pg_isready; do
    command -v "$tool" >/dev/null 2>&1 || { missing+=(postgresql-client); break; }
done
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
# MySQL/MariaDB: the server and its client tools (mariadb, mariadb-dump, mariadb-admin).
[[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
{ command -v mariadb && command -v mariadb-dump && command -v mariadb-admin; } >/dev/null 2>&1 ||
    missing+=(mariadb-client)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
# Encrypted backups must open with the standard age command.
{ command -v age && command -v age-keygen; } >/dev/null 2>&1 || missing+=(age)
# The tests run a Python writer process against SQLite, and signal processes with kill/pgrep.
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
{ command -v pgrep && command -v kill; } >/dev/null 2>&1 || missing+=(procps)
# Headless browser for the web admin test: the binaries given, else Debian's
# (installed when missing; a path given by hand is never replaced).
CHROMIUM=${DBKEEP_TEST_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${DBKEEP_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}
[[ -n "${DBKEEP_TEST_CHROMIUM:-}" || -x "$CHROMIUM" ]] || missing+=(chromium)
[[ -n "${DBKEEP_TEST_CHROMEDRIVER:-}" || -x "$CHROMEDRIVER" ]] || missing+=(chromium-driver)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    PG_BIN=$(find_pg_bin)
fi
[[ -n "$PG_BIN" ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found"
# Server tools (initdb, pg_ctl) are not on PATH on Debian; the tests may want them too.
export PATH="$PG_BIN:$PATH"

if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
    die "running as root but there is no 'postgres' user to own throwaway clusters (initdb refuses root)"
fi

browser_missing=""
[[ -x "$CHROMIUM" ]] || browser_missing="Chromium at $CHROMIUM"
if [[ ! -x "$CHROMEDRIVER" ]]; then
    browser_missing="${browser_missing:+$browser_missing, no }chromedriver at $CHROMEDRIVER"
fi
if [[ -z "$browser_missing" ]]; then
    export DBKEEP_TEST_CHROMIUM="$CHROMIUM" DBKEEP_TEST_CHROMEDRIVER="$CHROMEDRIVER"
    BROWSER_DESC="$("$CHROMIUM" --version 2>/dev/null | cut -d' ' -f1-2 || true)"
    BROWSER_DESC="$CHROMIUM (${BROWSER_DESC:-version unknown}), $CHROMEDRIVER"
else
    service_missing "no $browser_missing for the browser test"
    BROWSER_DESC="NOT AVAILABLE"
fi

# Run a PostgreSQL server command as the cluster owner: initdb and postgres
# refuse to run as root. From / so an unreadable cwd does not bother them.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port_from() {
    local port=$1
    while port_in_use "$port"; do
        port=$((port + 1))
        [[ $port -lt 65535 ]] || die "no free TCP port found"
    done
    echo "$port"
}

pg_answers() { pg_isready -q -h 127.0.0.1 -p "$1" -t 3 >/dev/null 2>&1; }

# Can we log in as postgres without a password (trust)?
pg_trust_ok() {
    env -u PGPASSWORD PGCONNECT_TIMEOUT=5 \
        psql -X -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
}

pg_password_ok() { # port password
    env PGPASSWORD="$2" PGCONNECT_TIMEOUT=5 \
        psql -X -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
}

wait_for_pg() { # port
    local _
    for _ in $(seq 1 30); do
        pg_answers "$1" && return 0
        sleep 1
    done
    return 1
}

# Create and start a throwaway cluster; sets STARTED_PORT. Not meant for $(...):
# it must register the cluster in CLUSTERS of this shell for cleanup.
STARTED_PORT=""
start_private_cluster() { # label preferred_port password(or "") initdb-args...
    local label=$1 port=$2 password=$3
    shift 3
    local tmpdir datadir
    # Under /tmp (not $TMPDIR, which may be a private home dir) so the
    # postgres user can always reach it.
    tmpdir=$(mktemp -d "/tmp/dbkeep-test-$label.XXXXXX") || return 1
    datadir="$tmpdir/data"
    CLUSTERS+=("$datadir|$tmpdir")
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$tmpdir" || return 1
    fi
    if [[ -n "$password" ]]; then
        (umask 077 && printf '%s\n' "$password" >"$tmpdir/pwfile") || return 1
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$tmpdir/pwfile" || return 1
        fi
        set -- "$@" "--pwfile=$tmpdir/pwfile"
    fi
    if ! as_pg "$PG_BIN/initdb" -D "$datadir" -U postgres --no-sync --encoding=UTF8 --locale=C "$@" \
        >"$tmpdir/initdb.log" 2>&1; then
        cat "$tmpdir/initdb.log" >&2
        return 1
    fi
    rm -f "$tmpdir/pwfile"
    port=$(free_port_from "$port")
    # Socket in the data dir: no clash with a system server's /var/run/postgresql.
    # fsync off: throwaway data, faster tests.
    if ! as_pg "$PG_BIN/pg_ctl" -D "$datadir" -l "$tmpdir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$datadir' -c fsync=off" \
        start >/dev/null; then
        cat "$tmpdir/server.log" >&2 || true
        return 1
    fi
    STARTED_PORT=$port
}

# ---------------------------------------------------------------------------
# 2. Main server (trust auth)
# ---------------------------------------------------------------------------
PG_PORT=${DBKEEP_TEST_PG_PORT:-5432}
MAIN_DESC=""

debian_cluster_for_port() { # port -> "version name" of a Debian cluster on it
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk -v p="$1" '$3 == p { print $1, $2; exit }'
}

hba_trusts_localhost() { # hba file
    [[ -r "$1" ]] || return 1
    grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+(all|postgres)[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust([[:space:]]|$)' "$1"
}

if [[ -n "${DBKEEP_TEST_PG_URL:-}" ]]; then
    MAIN_DESC="given by DBKEEP_TEST_PG_URL"
    if ! env PGCONNECT_TIMEOUT=5 psql -X -w -q "$DBKEEP_TEST_PG_URL" -Atc 'select 1' >/dev/null 2>&1; then
        service_missing "PostgreSQL at DBKEEP_TEST_PG_URL does not answer"
    fi
else
    if pg_answers "$PG_PORT" && pg_trust_ok "$PG_PORT"; then
        MAIN_DESC="already running on 127.0.0.1:$PG_PORT"
    else
        if pg_answers "$PG_PORT"; then
            log "PostgreSQL on 127.0.0.1:$PG_PORT does not let 'postgres' in without a password; not using it"
        else
            cluster=$(debian_cluster_for_port "$PG_PORT")
            if [[ -n "$cluster" ]]; then
                read -r ver name <<<"$cluster"
                if hba_trusts_localhost "/etc/postgresql/$ver/$name/pg_hba.conf"; then
                    log "starting Debian cluster $ver/$name"
                    if "${SUDO[@]}" pg_ctlcluster "$ver" "$name" start && wait_for_pg "$PG_PORT" &&
                        pg_trust_ok "$PG_PORT"; then
                        MAIN_DESC="Debian cluster $ver/$name on 127.0.0.1:$PG_PORT (started)"
                    else
                        warn "could not use Debian cluster $ver/$name"
                    fi
                fi
            fi
        fi
        if [[ -z "$MAIN_DESC" ]]; then
            log "starting a throwaway PostgreSQL cluster (trust auth)"
            if start_private_cluster main "$PG_PORT" "" --auth=trust && pg_trust_ok "$STARTED_PORT"; then
                PG_PORT=$STARTED_PORT
                MAIN_DESC="throwaway cluster on 127.0.0.1:$PG_PORT"
            fi
        fi
    fi
    export DBKEEP_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    if [[ -z "$MAIN_DESC" ]]; then
        service_missing "no PostgreSQL server with trust auth could be found or started"
        MAIN_DESC="NOT AVAILABLE"
    fi
fi

# ---------------------------------------------------------------------------
# 3. Password server (scram-sha-256 over TCP)
# ---------------------------------------------------------------------------
AUTH_PORT=${DBKEEP_TEST_PG_AUTH_PORT:-55432}
export DBKEEP_TEST_PG_AUTH_PASSWORD=${DBKEEP_TEST_PG_AUTH_PASSWORD:-dbkeep-test-secret}
AUTH_DESC=""

# Reuse a server already there only if it really checks this password:
# tests rely on a wrong password being rejected.
if pg_answers "$AUTH_PORT" &&
    pg_password_ok "$AUTH_PORT" "$DBKEEP_TEST_PG_AUTH_PASSWORD" &&
    ! pg_password_ok "$AUTH_PORT" "not-$DBKEEP_TEST_PG_AUTH_PASSWORD"; then
    AUTH_DESC="already running on 127.0.0.1:$AUTH_PORT"
else
    log "starting a throwaway PostgreSQL cluster (scram-sha-256 over TCP)"
    if start_private_cluster auth "$AUTH_PORT" "$DBKEEP_TEST_PG_AUTH_PASSWORD" \
        --auth-local=trust --auth-host=scram-sha-256 &&
        pg_password_ok "$STARTED_PORT" "$DBKEEP_TEST_PG_AUTH_PASSWORD"; then
        AUTH_PORT=$STARTED_PORT
        AUTH_DESC="throwaway cluster on 127.0.0.1:$AUTH_PORT"
    fi
fi
export DBKEEP_TEST_PG_AUTH_URL="postgres://postgres@127.0.0.1:$AUTH_PORT/postgres"
if [[ -z "$AUTH_DESC" ]]; then
    service_missing "no password-protected PostgreSQL server could be started"
    AUTH_DESC="NOT AVAILABLE"
fi

# ---------------------------------------------------------------------------
# Schemathesis (API fuzzing against the OpenAPI document, tests/it/openapi.rs)
# ---------------------------------------------------------------------------
SCHEMATHESIS_VERSION=4.32.5

# Installs schemathesis into a virtualenv at target/test-venv (created when
# absent; the pinned version is installed when another or none is there) and
# exports DBKEEP_TEST_SCHEMATHESIS. Needs python3 with venv and pip. The
# README's alert rules are parsed with the PyYAML that schemathesis brings.
setup_schemathesis() {
    local venv="$PWD/target/test-venv"
    local bin="$venv/bin/schemathesis"
    if [[ -x "$bin" && "$("$bin" --version 2>/dev/null || true)" == *" $SCHEMATHESIS_VERSION" ]]; then
        export DBKEEP_TEST_SCHEMATHESIS="$bin"
        log "schemathesis: $SCHEMATHESIS_VERSION in target/test-venv"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        service_missing "no python3 to install schemathesis with"
        return 0
    fi
    if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        log "creating a Python virtualenv in target/test-venv"
        rm -rf -- "$venv"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            # Debian's python3 keeps venv (and its pip) in a separate package.
            rm -rf -- "$venv"
            (apt_install python3-venv) || true
            if ! python3 -m venv "$venv"; then
                service_missing "could not create a Python virtualenv in target/test-venv"
                return 0
            fi
        fi
    fi
    log "pip install schemathesis==$SCHEMATHESIS_VERSION (into target/test-venv)"
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"; then
        service_missing "could not install schemathesis $SCHEMATHESIS_VERSION"
        return 0
    fi
    if ! "$bin" --version >/dev/null 2>&1; then
        service_missing "schemathesis was installed but does not run"
        return 0
    fi
    if ! "$venv/bin/python" -c 'import yaml' >/dev/null 2>&1; then
        service_missing "PyYAML is missing from target/test-venv"
        return 0
    fi
    export DBKEEP_TEST_SCHEMATHESIS="$bin"
}
setup_schemathesis

# Test servers from PyPI, in the same virtualenv:
#   venv_package DISTRIBUTION REQUIREMENT VERSION [PROGRAM]
# installs REQUIREMENT==VERSION unless DISTRIBUTION is installed at VERSION (and PROGRAM, if
# named, is there).
venv_package() {
    local module=$1 requirement=$2 version=$3 program=${4:-}
    local python="$PWD/target/test-venv/bin/python"
    [[ -x "$python" ]] || { service_missing "no target/test-venv for $module"; return 0; }
    if [[ "$("$python" -c "import importlib.metadata as m; print(m.version('$module'))" 2>/dev/null || true)" != "$version" ||
        (-n "$program" && ! -x "$PWD/target/test-venv/bin/$program") ]]; then
        log "pip install $requirement==$version (into target/test-venv)"
        "$python" -m pip install --quiet --disable-pip-version-check "$requirement==$version" ||
            { service_missing "could not install $requirement $version"; return 0; }
    fi
    log "$module: $version in target/test-venv"
}
# A real SMTP server for the email notifications (tests/it/notify.rs).
venv_package aiosmtpd aiosmtpd 1.4.6
# An S3-compatible server on loopback for the off-site copies (tests/it/offsite.rs).
venv_package moto 'moto[server]' 5.1.18 moto_server
# maturin and zig, to build the Python package's portable wheel as a release does, and
# auditwheel to check it (tests/it/python_package.rs); the pins are the release's.
wheel_pin() { sed -n "s/^$1==//p" packaging/wheel-requirements.txt; }
venv_package maturin maturin "$(wheel_pin maturin)" maturin
venv_package ziglang ziglang "$(wheel_pin ziglang)"
venv_package auditwheel auditwheel "$(wheel_pin auditwheel)" auditwheel

# Django and the servers it runs under, as wheels for the Django tests (tests/it/django.rs),
# which install them with the built dbkeep wheel into a fresh virtualenv, offline. The LTS
# (5.2) is the newest Django for this machine's Python (3.11; Django 6 needs 3.12).
DJANGO_WHEELS=("django==5.2.19" "gunicorn==27.0.1" "psycopg[binary]==3.3.9")
setup_wheelhouse() {
    local dir="$PWD/target/wheelhouse" stamp
    stamp="$dir/.requirements"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "${DJANGO_WHEELS[*]}" ]]; then
        log "wheelhouse: ${DJANGO_WHEELS[*]} in target/wheelhouse"
        return 0
    fi
    log "pip download ${DJANGO_WHEELS[*]} (into target/wheelhouse)"
    rm -rf "$dir"
    mkdir -p "$dir"
    "$PWD/target/test-venv/bin/python" -m pip download --quiet --disable-pip-version-check \
        --dest "$dir" "${DJANGO_WHEELS[@]}" ||
        { service_missing "could not download ${DJANGO_WHEELS[*]}"; return 0; }
    printf '%s' "${DJANGO_WHEELS[*]}" >"$stamp"
}
setup_wheelhouse

# Azure's blob emulator for the off-site copies (tests/it/offsite.rs): azurite from npm, into
# target/azurite (Node.js from Debian when missing).
AZURITE_VERSION=3.35.0
setup_azurite() {
    local dir="$PWD/target/azurite"
    if ! command -v npm >/dev/null 2>&1; then
        (apt_install nodejs npm) || { service_missing "no npm to install azurite with"; return 0; }
    fi
    if [[ ! -x "$dir/node_modules/.bin/azurite-blob" ||
        "$(node -p "require('$dir/node_modules/azurite/package.json').version" 2>/dev/null || true)" != "$AZURITE_VERSION" ]]; then
        log "npm install azurite@$AZURITE_VERSION (into target/azurite)"
        mkdir -p "$dir"
        (cd "$dir" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null) ||
            { service_missing "could not install azurite $AZURITE_VERSION"; return 0; }
    fi
    log "azurite: $AZURITE_VERSION in target/azurite"
}
setup_azurite

# An OpenID Connect provider for single sign-on (tests/it/oidc.rs): oidc-provider from npm, into
# target/oidc-provider, run by tests/it/support/oidc_provider.mjs.
OIDC_PROVIDER_VERSION=9.13.3
setup_oidc_provider() {
    local dir="$PWD/target/oidc-provider"
    if ! command -v npm >/dev/null 2>&1; then
        service_missing "no npm to install oidc-provider with"
        return 0
    fi
    if [[ "$(node -p "require('$dir/node_modules/oidc-provider/package.json').version" 2>/dev/null || true)" != "$OIDC_PROVIDER_VERSION" ]]; then
        log "npm install oidc-provider@$OIDC_PROVIDER_VERSION (into target/oidc-provider)"
        mkdir -p "$dir"
        (cd "$dir" && npm install --silent --no-audit --no-fund "oidc-provider@$OIDC_PROVIDER_VERSION" >/dev/null) ||
            { service_missing "could not install oidc-provider $OIDC_PROVIDER_VERSION"; return 0; }
    fi
    log "oidc-provider: $OIDC_PROVIDER_VERSION in target/oidc-provider"
}
setup_oidc_provider

# MariaDB on 127.0.0.1:3306, root without a password: the one running, else started from
# Debian's installation (root's TCP login opened when only the socket lets root in).
MYSQL_PORT=${DBKEEP_TEST_MYSQL_PORT:-3306}
mysql_answers() {
    mariadb --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u root --connect-timeout=3 \
        -N -e 'SELECT 1' >/dev/null 2>&1
}
setup_mariadb() {
    if ! mysql_answers; then
        if ! mariadb-admin --connect-timeout=3 ping >/dev/null 2>&1; then
            log "starting MariaDB (/usr/sbin/mariadbd)"
            "${SUDO[@]}" install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
            "${SUDO[@]}" start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd \
                -- --user=mysql || true
            for _ in $(seq 1 60); do
                mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1 && break
                sleep 1
            done
        fi
        if ! mysql_answers && "${SUDO[@]}" mariadb -N -e 'SELECT 1' >/dev/null 2>&1; then
            log "MariaDB: letting root in over TCP without a password (test machine)"
            "${SUDO[@]}" mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" || true
        fi
    fi
    if mysql_answers; then
        export DBKEEP_TEST_MYSQL_URL="mysql://root@127.0.0.1:$MYSQL_PORT"
        log "MariaDB: $DBKEEP_TEST_MYSQL_URL ($(mariadb --version))"
    else
        service_missing "no MariaDB answering on 127.0.0.1:$MYSQL_PORT for root without a password"
    fi
}
setup_mariadb

# ---------------------------------------------------------------------------
# 4. Tests
# ---------------------------------------------------------------------------
log "main PostgreSQL:     $DBKEEP_TEST_PG_URL ($MAIN_DESC)"
log "password PostgreSQL: $DBKEEP_TEST_PG_AUTH_URL ($AUTH_DESC)"
log "pg_dump: $(command -v pg_dump) ($(pg_dump --version))"
log "browser: $BROWSER_DESC"

# Not exec: the EXIT trap must still stop the throwaway clusters.
status=0
if [[ -n "${DBKEEP_TEST_CMD:-}" ]]; then
    log "running: $DBKEEP_TEST_CMD $*"
    bash -c "$DBKEEP_TEST_CMD \"\$@\"" test-cmd "$@" || status=$?
else
    log "running: cargo test --all-targets --no-fail-fast $*"
    cargo test --all-targets --no-fail-fast "$@" || status=$?
fi
exit "$status"
