#!/usr/bin/env bash
# Load-test the web admin and JSON API of `dbkeep serve` with wrk, against a catalog of
# 100,000 backups: requests per second, median and p99 latency, and serve's peak memory.
# See bench/README.md ("Web admin").
#
# Usage: bench/web.sh > web-results.md   (progress on stderr)
#
# Needs wrk, sqlite3 and curl (Debian/Ubuntu: sudo apt-get install wrk sqlite3 curl).
#
# Environment (defaults in brackets):
#   ROWS         backups to seed into the catalog [100000]
#   DURATION     seconds of load per target [30]
#   CONNECTIONS  open connections kept by wrk [50]
#   THREADS      wrk threads [2]
#   PORT         where serve listens [first free port from 18080]
#   DBKEEP_BIN   benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${ROWS:-100000}
DURATION=${DURATION:-30}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
PASSWORD="bench-web-password"
# Targets from the task description: p99 latency and peak resident memory.
P99_TARGET_MS=50
RSS_TARGET_MIB=64

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

for tool in wrk sqlite3 curl; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found; install it with: sudo apt-get install wrk sqlite3 curl"
done

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z "${PORT:-}" ]]; then
    PORT=18080
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
fi
BASE="http://127.0.0.1:$PORT"

if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building dbkeep (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi

work=$(mktemp -d)
pid=
stop_serve() {
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}
cleanup() {
    stop_serve
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

dbkeep() { "$DBKEEP_BIN" --config "$work/dbkeep.toml" "$@"; }

start_serve() {
    NO_COLOR=1 DBKEEP_ADMIN_PASSWORD="$PASSWORD" "$DBKEEP_BIN" --config "$work/dbkeep.toml" serve \
        >>"$work/serve.out" 2>>"$work/serve.log" &
    pid=$!
    local _
    for _ in $(seq 1 100); do
        # Any answer will do: /healthz says 503 until every database has a recent backup.
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz" || true)" != 000 ]]; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/serve.log" >&2
    die "dbkeep serve did not start on $BASE"
}

# ---------------------------------------------------------------------------
# Configuration: four SQLite databases and one PostgreSQL database (never
# contacted: the schedules do not fire during a run, and nothing is backed up).
# ---------------------------------------------------------------------------
SQLITE_DBS=(app auth billing analytics)
{
    echo 'timezone = "UTC"'
    echo "listen = \"127.0.0.1:$PORT\""
    for db in "${SQLITE_DBS[@]}"; do
        sqlite3 "$work/$db.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
        printf '[[databases]]\nname = "%s"\nurl = "sqlite:%s.db"\nschedules = ["0 0 1 1 *"]\n' "$db" "$db"
    done
    printf '[[databases]]\nname = "shop"\nurl = "postgres://dbkeep@127.0.0.1:5432/shop"\nschedules = ["0 0 1 1 *"]\n'
} >"$work/dbkeep.toml"

log "starting serve once to create and migrate the catalog"
start_serve
stop_serve

# ---------------------------------------------------------------------------
# Seed the catalog: one backup every 10 minutes, round robin over the five
# databases, ids increasing with time and ending now. About 4 % failed (with
# an error message, no file); successful backups older than 30 days are
# pruned, as retention would have done; 90 % scheduled, 7 % manual, 3 % API.
# ---------------------------------------------------------------------------
log "seeding $ROWS backups into the catalog"
now=$(date -u +%s)
sqlite3 "$work/dbkeep.sqlite3" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
CREATE TEMP TABLE dbs (i INTEGER PRIMARY KEY, name TEXT, kind TEXT, compression TEXT, ext TEXT);
INSERT INTO dbs VALUES
    (0, 'app', 'sqlite', 'none', '.db'),
    (1, 'auth', 'sqlite', 'none', '.db'),
    (2, 'billing', 'sqlite', 'zstd', '.db.zst'),
    (3, 'analytics', 'sqlite', 'gzip', '.db.gz'),
    (4, 'shop', 'postgres', 'gzip', '.sql.gz');
CREATE TEMP TABLE errors (i INTEGER PRIMARY KEY, text TEXT);
INSERT INTO errors VALUES
    (0, 'pg_dump failed (exit status 1): pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
    (1, 'database is locked: gave up after waiting 30s for the source database'),
    (2, 'the copy failed its integrity check: quick_check returned "*** in database main *** Page 42: btree page has bad free space"'),
    (3, 'No space left on device (os error 28) while writing the backup file'),
    (4, 'timed out after 1h: the backup was cancelled');
WITH RECURSIVE
    n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $ROWS),
    r AS (
        SELECT x,
               $now - ($ROWS - x) * 600 AS t,
               abs(random()) % 1000 AS roll,
               200 + abs(random()) % 60000 AS ms,
               x % 5 AS d
        FROM n
    )
INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                     compression, started_at, finished_at, duration_ms, error, pruned_at)
SELECT r.x, dbs.name, dbs.kind,
       CASE WHEN r.roll < 40 THEN 'failed' ELSE 'success' END,
       CASE WHEN r.roll % 100 < 90 THEN 'scheduled' WHEN r.roll % 100 < 97 THEN 'manual' ELSE 'api' END,
       CASE WHEN r.roll < 40 THEN NULL
            ELSE dbs.kind || '_backup_' || strftime('%Y%m%d_%H%M%S', r.t, 'unixepoch') || dbs.ext END,
       CASE WHEN r.roll < 40 THEN NULL
            ELSE '$work/backups/' || dbs.name || '/' || dbs.kind || '_backup_'
                 || strftime('%Y%m%d_%H%M%S', r.t, 'unixepoch') || dbs.ext END,
       CASE WHEN r.roll < 40 THEN NULL ELSE 100000 + abs(random()) % 500000000 END,
       CASE WHEN r.roll < 40 THEN NULL ELSE lower(hex(randomblob(32))) END,
       dbs.compression,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.t, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', r.t + r.ms / 1000.0, 'unixepoch'),
       r.ms,
       CASE WHEN r.roll < 40 THEN (SELECT text FROM errors WHERE i = r.roll % 5) END,
       CASE WHEN r.roll >= 40 AND r.t < $now - 30 * 86400
            THEN strftime('%Y-%m-%dT%H:%M:%fZ', r.t + 30 * 86400 + 60, 'unixepoch') END
FROM r JOIN dbs ON dbs.i = r.d;
COMMIT;
SQL
counts=$(sqlite3 "$work/dbkeep.sqlite3" \
    "SELECT count(*) || ' rows: ' || sum(status = 'success') || ' success (' || count(pruned_at) || ' pruned), '
            || sum(status = 'failed') || ' failed' FROM backups")
log "catalog: $counts"

TOKEN=$(dbkeep token create bench-web | tail -n 1)
[[ -n "$TOKEN" ]] || die "no API token printed by 'dbkeep token create'"

log "starting serve"
start_serve

# Log in like a browser: the login form's CSRF token comes as a hidden field
# and a cookie; a good POST answers with the session cookie.
jar="$work/cookies.txt"
login_page=$(curl -s -c "$jar" "$BASE/login")
csrf=$(printf '%s' "$login_page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
[[ -n "$csrf" ]] || die "no csrf_token field on /login"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" \
    --data-urlencode "username=admin" --data-urlencode "password=$PASSWORD" \
    --data-urlencode "csrf_token=$csrf" "$BASE/login")
SESSION=$(awk '$6 == "dbkeep_session" { print $7 }' "$jar")
if [[ "$code" != 303 && "$code" != 302 ]] || [[ -z "$SESSION" ]]; then
    die "login failed (HTTP $code); serve log:$(printf '\n'; cat "$work/serve.log")"
fi
COOKIE="Cookie: dbkeep_session=$SESSION"
BEARER="Authorization: Bearer $TOKEN"

# Each target answers 200 (not a redirect to /login) before it is measured.
check() { # header path
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' -H "$1" "$BASE$2")
    [[ "$got" == 200 ]] || die "GET $2 answered $got instead of 200"
}

# wrk prints latencies as 812.00us, 3.20ms or 1.02s.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.0f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { printf "?" }
    }'
}

hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

rows_md=()
verdicts=()
peak_kib=0 # the highest VmHWM seen, start-up included
note_peak() { peak_kib=$(($1 > peak_kib ? $1 : peak_kib)); }
measure() { # label header path
    local label=$1 header=$2 path=$3 out rps p50 p99 non2xx errors hwm
    check "$header" "$path"
    note_peak "$(hwm_kib)"
    # Peak RSS per target: reset the high-water mark (Linux: "5" > clear_refs).
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    log "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency $path ($label)"
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$header" "$BASE$path")
    printf '%s\n' "$out" >"$work/wrk-$label.txt"
    kill -0 "$pid" 2>/dev/null || die "dbkeep serve died during the run"
    hwm=$(hwm_kib)
    note_peak "$hwm"
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    rows_md+=("| \`$path\` | $label | $rps | $p50 | $p99 | ${non2xx:-0} | ${errors:-0} | $(mib "$hwm") |")
    verdicts+=("$p99 $hwm")
}

measure "session cookie" "$COOKIE" "/"
measure "bearer token" "$BEARER" "/api/v1/backups"
measure "session cookie" "$COOKIE" "/?before=$((ROWS / 2))"

worst_p99=$(printf '%s\n' "${verdicts[@]}" | awk '{ if ($1 > m) m = $1 } END { print m + 0 }')
stop_serve

echo "### Web admin"
echo
echo "- $(date -u +%Y-%m-%d), $(nproc) cores; dbkeep $("$DBKEEP_BIN" --version | awk '{print $2}'); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
echo "- catalog: $counts; 5 databases"
echo "- wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, one target after the other, on the same machine as serve"
echo
echo "| Target | Auth | Requests/s | p50 ms | p99 ms | Non-2xx | Socket errors | Peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows_md[@]}"
echo
p99_ok=$(awk -v p="$worst_p99" -v t="$P99_TARGET_MS" 'BEGIN {print (p < t) ? "met" : "MISSED"}')
rss_ok=$(awk -v k="$peak_kib" -v t="$RSS_TARGET_MIB" 'BEGIN {print (k / 1024 < t) ? "met" : "MISSED"}')
echo "Targets: p99 < $P99_TARGET_MS ms: $p99_ok (worst $worst_p99 ms); peak RSS < $RSS_TARGET_MIB MiB: $rss_ok ($(mib "$peak_kib") MiB over the whole run)."
