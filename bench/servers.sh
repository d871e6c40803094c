#!/usr/bin/env bash
# Whole servers: one `[[servers]]` entry over N PostgreSQL databases (500 by default).
# See bench/README.md ("Whole servers").
#
# One run makes N small databases `dbkeep_bench_srv_<pid>_NNN` on the local server (copies of
# one template holding a small table), then:
#   1. `dbkeep discover --json`, ROUNDS times, against `psql -Atc "SELECT datname FROM
#      pg_database"` (what listing the databases costs without dbkeep);
#   2. `dbkeep serve` on a fresh catalog, so every database is new and gets its first backup
#      at once: the time until the catalog holds N successful backups, and the most `pg_dump`
#      sessions seen at once on the benchmark's databases (pg_stat_activity, sampled many
#      times a second by one psql session), which max_concurrent_per_server (default 1)
#      must keep at 1;
#   3. the same serve, idle with every first backup done: its VmRSS and VmHWM after IDLE_WAIT
#      seconds, and its own plan of next fires (GET /api/v1/databases, to the millisecond);
#      then it is stopped with SIGTERM;
#   4. `dbkeep schedule`: each database's next fire under `spread = "1h"` (shown to the
#      millisecond), which must all fall in the first hour of a day (the cron time is
#      midnight) and be distinct.
# The databases are dropped at the end, also on failure or Ctrl-C.
#
# Usage: bench/servers.sh > servers-results.md   (progress on stderr)
#
# Needs psql, pg_dump, sqlite3, python3, curl, /usr/bin/time and a PostgreSQL server (13 or
# later) that lets the user create databases without a password.
#
# Environment (defaults in brackets):
#   PG_URL      server to use, without a database name [postgres://postgres@127.0.0.1:5432]
#   N           databases made [500]
#   ROUNDS      measurements of discover and of the psql listing [5]
#   IDLE_WAIT   seconds serve is left idle before its memory is read [30]
#   TIMEOUT     seconds to wait for the N first backups [1800]
#   DBKEEP_BIN  benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
N=${N:-500}
ROUNDS=${ROUNDS:-5}
IDLE_WAIT=${IDLE_WAIT:-30}
TIMEOUT=${TIMEOUT:-1800}

for tool in psql pg_dump sqlite3 python3 curl /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number"

if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building a release dbkeep"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin dbkeep
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi
DBKEEP_BIN=$(realpath "$DBKEEP_BIN")

WORK=$(mktemp -d -t dbkeep-bench-servers.XXXXXX)
PREFIX="dbkeep_bench_srv_$$_"
# The same prefix as a LIKE pattern: `_` alone would match any character (and another run's
# databases, e.g. pid 12 matching pid 123's).
LIKE="${PREFIX//_/\\_}%"
TEMPLATE="dbkeep_bench_tpl_$$" # outside the include pattern
serve_pid=
watch_pid=

pg() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" "$@"; }

cleanup() {
    set +e
    [[ -n "$watch_pid" ]] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    log "dropping the benchmark's databases"
    psql -X -q -At "$PG_URL/postgres" -c \
        "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE);', datname) FROM pg_database
         WHERE datname LIKE '$LIKE' OR datname = '$TEMPLATE'" 2>/dev/null |
        psql -X -q "$PG_URL/postgres" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: >"$WORK/results"

dbkeep() { "$DBKEEP_BIN" --config "$WORK/dbkeep.toml" "$@"; }

# ---------------------------------------------------------------------------
# The databases: one template with a small table, N copies of it from one psql session.
# ---------------------------------------------------------------------------
width=$((${#N} > 3 ? ${#N} : 3))
names=()
for ((i = 1; i <= N; i++)); do
    names+=("$(printf '%s%0*d' "$PREFIX" "$width" "$i")")
done

log "making $N databases ${PREFIX}$(printf '%0*d' "$width" 1) … ${names[-1]}"
start=$(date +%s.%N)
pg -c "CREATE DATABASE $TEMPLATE"
psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$TEMPLATE" -c \
    "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
     INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g;"
for name in "${names[@]}"; do
    printf 'CREATE DATABASE %s TEMPLATE %s;\n' "$name" "$TEMPLATE"
done | pg >/dev/null
made=$(psql -X -At "$PG_URL/postgres" -c "SELECT count(*) FROM pg_database WHERE datname LIKE '$LIKE'")
[[ $made -eq $N ]] || die "made $made databases, not $N"
create_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
log "  made in ${create_s}s"
total_dbs=$(psql -X -At "$PG_URL/postgres" -c "SELECT count(*) FROM pg_database")

# ---------------------------------------------------------------------------
# The configuration
# ---------------------------------------------------------------------------
write_config() { # CATALOG
    cat >"$WORK/dbkeep.toml" <<TOML
timezone = "UTC"
verify_schedule = "off"
catalog = "$1"
backup_dir = "$WORK/backups"
listen = "127.0.0.1:$port"

[[servers]]
name = "pg"
url = "$PG_URL/"
include = ["${PREFIX}*"]
schedules = ["0 0 * * *"]
spread = "1h"
compression = "gzip"
TOML
}

# A free port for serve's web admin (nothing else is served).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config "$WORK/discover.sqlite3"

# ---------------------------------------------------------------------------
# 1. discover --json against the psql listing
# ---------------------------------------------------------------------------
dbkeep discover --json >"$WORK/discover.json" || die "dbkeep discover --json failed"
new=$(grep -c '"state": "new"' "$WORK/discover.json" || true)
[[ $new -eq $N ]] || die "discover found $new new databases, not $N (see $WORK/discover.json)"
log "discover --json and psql, $ROUNDS rounds each ($N new of $total_dbs databases on the server)"
for ((round = 1; round <= ROUNDS; round++)); do
    measure discover "$DBKEEP_BIN" --config "$WORK/dbkeep.toml" discover --json
    measure psql psql -X -Atc "SELECT datname FROM pg_database" "$PG_URL/postgres"
done

# ---------------------------------------------------------------------------
# 2. serve on a fresh catalog: N first backups, at most one pg_dump at once
# ---------------------------------------------------------------------------
write_config "$WORK/serve.sqlite3"
catalog_count() { # STATUS
    [[ -f "$WORK/serve.sqlite3" ]] || { echo 0 && return; }
    sqlite3 -cmd '.timeout 10000' "$WORK/serve.sqlite3" \
        "SELECT count(*) FROM backups WHERE status = '$1'" 2>/dev/null || echo 0
}

# One psql session sampling pg_stat_activity every 50 ms, each sample with the server's time.
psql -X -At -F ' ' "$PG_URL/postgres" >"$WORK/samples" 2>"$WORK/watch.err" <<SQL &
SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS'), count(*) FROM pg_stat_activity
WHERE application_name = 'pg_dump' AND datname LIKE '$LIKE' \watch 0.05
SQL
watch_pid=$!
sleep 1
[[ -s "$WORK/samples" ]] || die "the pg_stat_activity sampler does not run: $(cat "$WORK/watch.err")"

log "dbkeep serve on a fresh catalog: $N first backups"
start=$(date +%s.%N)
"$DBKEEP_BIN" --config "$WORK/dbkeep.toml" serve 2>"$WORK/serve.log" &
serve_pid=$!
deadline=$((SECONDS + TIMEOUT))
last_log=$SECONDS
while :; do
    kill -0 "$serve_pid" 2>/dev/null || { tail -n 20 "$WORK/serve.log" >&2; die "serve stopped"; }
    done_n=$(catalog_count success)
    ((done_n >= N)) && break
    failed=$(catalog_count failed)
    if ((failed > 0)); then
        sqlite3 "$WORK/serve.sqlite3" "SELECT database, error FROM backups WHERE status = 'failed' LIMIT 3" >&2
        die "$failed backups failed"
    fi
    ((SECONDS < deadline)) || die "only $done_n of $N backups after ${TIMEOUT}s"
    if ((SECONDS - last_log >= 15)); then
        log "  $done_n of $N backed up"
        last_log=$SECONDS
    fi
    sleep 0.2
done
backups_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
serve_cpu_ticks=$(awk '{ print $14 + $15 }' "/proc/$serve_pid/stat")
sleep 0.5 # a last few samples after the last backup
kill "$watch_pid" 2>/dev/null # psql writes each sample out at once: none is lost
wait "$watch_pid" 2>/dev/null || true
watch_pid=
grep -E '^[0-9:.]+ [0-9]+$' "$WORK/samples" >"$WORK/samples.ok" || true
log "  $N backups in ${backups_s}s"

listed=$(dbkeep list --json --status success | grep -c '"status": "success"' || true)
[[ $listed -eq $N ]] || die "dbkeep list --json shows $listed successful backups, not $N"
first_start=$(sqlite3 "$WORK/serve.sqlite3" "SELECT min(started_at) FROM backups")
last_end=$(sqlite3 "$WORK/serve.sqlite3" "SELECT max(finished_at) FROM backups")
span_s=$(awk -v a="$(date -u -d "$first_start" +%s.%N)" -v b="$(date -u -d "$last_end" +%s.%N)" \
    'BEGIN { printf "%.1f", b - a }')
median_ms=$(sqlite3 "$WORK/serve.sqlite3" "SELECT duration_ms FROM backups" | median | xargs printf '%.0f')
# The pause between one backup's end and the next one's start (the server idle meanwhile).
gap_ms=$(sqlite3 "$WORK/serve.sqlite3" \
    "SELECT g FROM (SELECT (julianday(started_at) - julianday(lag(finished_at) OVER (ORDER BY started_at))) * 86400000 AS g FROM backups) WHERE g IS NOT NULL" |
    median | xargs printf '%.0f')
samples=$(wc -l <"$WORK/samples.ok")
((samples > 0)) || die "no pg_stat_activity samples: $(cat "$WORK/watch.err")"
max_dumps=$(awk '{ print $2 }' "$WORK/samples.ok" | sort -n | tail -n 1)
busy=$(awk '$2 > 0' "$WORK/samples.ok" | wc -l)
awk '$2 > 1' "$WORK/samples.ok" | head -n 5 | while read -r line; do log "  more than one pg_dump: $line"; done
rate=$(awk -v n="$samples" -v a="$(head -n 1 "$WORK/samples.ok" | cut -d' ' -f1)" \
    -v b="$(tail -n 1 "$WORK/samples.ok" | cut -d' ' -f1)" 'BEGIN {
        split(a, x, ":"); split(b, y, ":")
        s = (y[1] * 3600 + y[2] * 60 + y[3]) - (x[1] * 3600 + x[2] * 60 + x[3])
        if (s < 0) s += 86400
        printf "%.0f", (n - 1) / s }')
log "  at most $max_dumps pg_dump at once ($samples samples, $rate a second, $busy with a dump running)"
((max_dumps >= 1)) || die "the sampler never saw a pg_dump session"

# ---------------------------------------------------------------------------
# 3. serve idle
# ---------------------------------------------------------------------------
log "serve idle for ${IDLE_WAIT}s"
sleep "$IDLE_WAIT"
kill -0 "$serve_pid" 2>/dev/null || die "serve stopped"
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status")
hwm_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")
threads=$(awk '/^Threads/ { print $2 }' "/proc/$serve_pid/status")
idle_ticks=$(($(awk '{ print $14 + $15 }' "/proc/$serve_pid/stat") - serve_cpu_ticks))
hz=$(getconf CLK_TCK)
serve_cpu_s=$(awk -v t="$serve_cpu_ticks" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }')
idle_cpu_s=$(awk -v t="$idle_ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
after_idle=$(catalog_count success)
log "  VmRSS $((rss_kib / 1024)) MiB, VmHWM $((hwm_kib / 1024)) MiB"

# The running service's own plan, to the millisecond, as the API gives it.
token=$(dbkeep token create bench | tail -n 1)
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/databases" >"$WORK/api.json" ||
    die "GET /api/v1/databases failed"
read -r api_n api_distinct api_sec <<<"$(python3 -c '
import json, sys
runs = [d["next_run"] for d in json.load(open(sys.argv[1])) if d["name"].startswith(sys.argv[2])]
print(len(runs), len(set(runs)), len({r[:19] for r in runs if r}))
' "$WORK/api.json" "pg-$PREFIX")"
[[ $api_n -eq $N ]] || die "the API lists $api_n of the $N databases"
log "  the service plans $api_distinct distinct next fires to the millisecond ($api_sec to the second)"
log "stopping serve"
stop_start=$(date +%s.%N)
kill -TERM "$serve_pid"
serve_rc=0
wait "$serve_pid" || serve_rc=$?
serve_pid=
stop_s=$(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
((serve_rc == 0)) || { tail -n 20 "$WORK/serve.log" >&2; die "serve exited with $serve_rc after SIGTERM"; }

# ---------------------------------------------------------------------------
# 4. schedule: each database's next fire, spread over the hour after midnight
# ---------------------------------------------------------------------------
now=$(date -u +%s)
dbkeep schedule >"$WORK/schedule"
# A database's line, then its one schedule's line: `  0 0 * * *   next YYYY-MM-DD HH:MM:SS.mmm UTC; …`
awk -v p="pg-$PREFIX" '
    index($0, p) == 1 { db = $1; next }
    db != "" && /^  / && / next / { sub(/.* next /, ""); sub(/;.*/, ""); print db "\t" $0; db = "" }
' "$WORK/schedule" >"$WORK/fires"
scheduled=$(wc -l <"$WORK/fires")
[[ $scheduled -eq $N ]] || die "dbkeep schedule shows a next fire for $scheduled databases, not $N"
cut -f2 "$WORK/fires" | date -u -f - +%s%3N >"$WORK/fire-ms"
awk '{ print int($1 / 1000) }' "$WORK/fire-ms" >"$WORK/fire-epochs"
distinct=$(sort -u "$WORK/fire-ms" | wc -l)
distinct_s=$(sort -u "$WORK/fire-epochs" | wc -l)
earliest=$(sort -n "$WORK/fire-epochs" | head -n 1)
latest=$(sort -n "$WORK/fire-epochs" | tail -n 1)
# Within the hour after a midnight, and that midnight the next one (or today's, when run in
# the first hour of a day and a database's offset has not passed yet).
outside=$(awk -v now="$now" '{ if ($1 % 86400 >= 3600 || $1 <= now || $1 > now + 86400) n++ }
    END { print n + 0 }' "$WORK/fire-epochs")
fmt() { date -u -d "@$1" '+%Y-%m-%d %H:%M:%S'; }
log "  $distinct distinct next fires of $N to the millisecond ($distinct_s to the second), $(fmt "$earliest") to $(fmt "$latest") UTC, $outside outside the hour"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
read -r discover_s discover_rss <<<"$(medians discover)"
read -r psql_s psql_rss <<<"$(medians psql)"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { if [[ $1 == 1 ]]; then echo met; else echo "**missed**"; fi; }
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
pg_version=$(psql -X -At "$PG_URL/postgres" -c "SHOW server_version")

echo "## Whole servers: \`bench/servers.sh\`"
echo
echo "$(date -u +%Y-%m-%d), $N databases on one PostgreSQL $pg_version server ($total_dbs in all,"
echo "made in $create_s s), one \`[[servers]]\` entry; commit $commit, $(nproc) cores ($cpu)."
echo
echo "| what | figure | target |"
echo "|---|---|---|"
echo "| \`dbkeep discover --json\` (median of $ROUNDS) | $discover_s s, peak RSS $(mib "$discover_rss") MiB | under 2 s: $(verdict "$(awk -v s="$discover_s" 'BEGIN { print (s < 2) }')") |"
echo "| \`psql -Atc \"SELECT datname FROM pg_database\"\` (median of $ROUNDS) | $psql_s s, peak RSS $(mib "$psql_rss") MiB | — |"
echo "| serve: start to $N first backups in the catalog | $backups_s s (first start to last finish: $span_s s) | — |"
echo "| one backup (median of $N) / pause between two (median) | $median_ms ms / $gap_ms ms | — |"
echo "| serve's CPU time over the backups | $serve_cpu_s s | — |"
echo "| most \`pg_dump\` sessions at once on these databases | $max_dumps ($samples samples, $rate/s, $busy with a dump) | 1: $(verdict "$((max_dumps == 1))") |"
echo "| serve idle ${IDLE_WAIT} s after the last backup: VmRSS | $(mib "$rss_kib") MiB ($threads threads, $idle_cpu_s s CPU while idle) | under 64 MiB: $(verdict "$((rss_kib < 64 * 1024))") |"
echo "| serve's VmHWM (peak over the whole run) | $(mib "$hwm_kib") MiB | — |"
echo "| SIGTERM to exit | $stop_s s (exit code $serve_rc; $after_idle successful backups after the idle wait) | — |"
echo "| \`dbkeep schedule\`: distinct next fires, to the millisecond | $distinct of $N ($distinct_s to the second) | $N: $(verdict "$((distinct == N))") |"
echo "| the service's next fires (\`GET /api/v1/databases\`, to the millisecond) | $api_distinct distinct of $N ($api_sec to the second) | $N: $(verdict "$((api_distinct == N))") |"
echo "| earliest / latest next fire | $(fmt "$earliest") / $(fmt "$latest") UTC; $outside outside the hour after midnight | all within it: $(verdict "$((outside == 0))") |"
