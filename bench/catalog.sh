#!/usr/bin/env bash
# The catalog on PostgreSQL: what the web admin, an idle service and a large configuration cost
# when dbkeep keeps its catalog on a PostgreSQL server instead of a SQLite file.
# See bench/README.md ("Catalog on PostgreSQL").
#
# One run measures:
#   1. /backups (history page, session cookie) and /api/v1/backups (bearer token) under wrk
#      with 100,000 backup rows, on a PostgreSQL catalog and on a SQLite catalog holding the
#      same rows;
#   2. `dbkeep serve` with 1,000 configured databases, each on an hourly schedule, on a
#      PostgreSQL catalog: idle RSS and CPU time over a quiet minute, and the dashboard (/)
#      under wrk (profiled with perf when it misses its target);
#   3. the catalog traffic of an idle `dbkeep serve` per minute (heartbeats, scheduler ticks),
#      for the 1,000-database configuration and a 1-database one: transactions from
#      pg_stat_database, and each statement from the server's log (log_min_duration_statement
#      = 0, set on the benchmark's own catalog database only).
#
# Usage: bench/catalog.sh > catalog-results.md   (progress on stderr)
#
# Needs a PostgreSQL server that lets the user create databases (superuser, for the per-database
# log setting), psql, sqlite3, curl and wrk (installed with apt-get when missing and possible);
# perf is optional (the dashboard's profile).
#
# Environment (defaults in brackets):
#   PG_URL        server to use, without a database name [postgres://postgres@127.0.0.1:5432]
#   PG_LOG        the server's log file, for the per-statement counts [found from the server]
#   ROWS          backups seeded for the web measurement [100000]
#   DATABASES     databases in the large configuration [1000]
#   HISTORY       backups seeded per database of the large configuration (hourly) [100]
#   DURATION      seconds of wrk load per target [15]
#   CONNECTIONS   open connections kept by wrk [50]
#   THREADS       wrk threads [2]
#   SECONDS_IDLE  length of each idle measurement [60]
#   SETTLE        seconds after start-up before an idle measurement begins [15]
#   PORT          where serve listens [first free port from 18280]
#   DBKEEP_BIN    benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
ROWS=${ROWS:-100000}
DATABASES=${DATABASES:-1000}
HISTORY=${HISTORY:-100}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SECONDS_IDLE=${SECONDS_IDLE:-60}
SETTLE=${SETTLE:-15}
PASSWORD="bench-catalog-password"
# Targets from the task description.
WEB_P99_TARGET_MS=50
DASH_P99_TARGET_MS=100
RSS_TARGET_MIB=64
IDLE_CPU_TARGET_PCT=0.1 # "near zero", as bench/idle.sh's target

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        log "installing wrk with apt-get"
        apt-get install -y -q wrk >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } ||
            die "could not install wrk; install it with: sudo apt-get install wrk"
    else
        die "wrk not found; install it with: sudo apt-get install wrk"
    fi
fi
for tool in psql sqlite3 curl wrk; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (Debian: sudo apt-get install postgresql-client sqlite3 curl wrk)"
done

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z "${PORT:-}" ]]; then
    PORT=18280
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
fi
BASE="http://127.0.0.1:$PORT"

# psql on database $1 (quiet, unaligned, stop at the first error).
pg() {
    local db=$1
    shift
    psql -X -q -At -v ON_ERROR_STOP=1 "$PG_URL/$db" "$@"
}
pg postgres -c 'SELECT 1' >/dev/null 2>&1 || die "cannot connect to $PG_URL/postgres"
[[ "$(pg postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" == t ]] ||
    die "the benchmark needs a superuser on $PG_URL (it sets log_min_duration_statement on its own databases)"

DBKEEP_BIN_GIVEN=${DBKEEP_BIN:-}
if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building dbkeep (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi
BUILT_FROM=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# The server's log, for counting statements: the collector's current file, or Debian's
# pg_ctlcluster file for this server's major version.
if [[ -z "${PG_LOG:-}" ]]; then
    current=$(pg postgres -c 'SELECT pg_current_logfile()' 2>/dev/null || true)
    if [[ -n "$current" ]]; then
        [[ "$current" == /* ]] || current="$(pg postgres -c 'SHOW data_directory')/$current"
        PG_LOG=$current
    else
        major=$(pg postgres -c 'SHOW server_version_num' | awk '{print int($1 / 10000)}')
        PG_LOG=/var/log/postgresql/postgresql-$major-main.log
    fi
fi
[[ -r "$PG_LOG" ]] || {
    log "cannot read the server's log ($PG_LOG): statements are counted from pg_stat_database only"
    PG_LOG=
}

work=$(mktemp -d)
work=$(cd "$work" && pwd -P)
DB_WEB="dbkeep_bench_cat_$$_web"
DB_MANY="dbkeep_bench_cat_$$_many"
DB_ONE="dbkeep_bench_cat_$$_one"
pid=
perf_pid=
stop_serve() {
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}
cleanup() {
    if [[ -n "$perf_pid" ]]; then
        kill "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    stop_serve
    for db in "$DB_WEB" "$DB_MANY" "$DB_ONE"; do
        pg postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fresh_db() { # name
    pg postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
        -c "CREATE DATABASE $1" >/dev/null
}

# An hourly schedule must not fire while a service runs: with 1,000 databases that would be
# 1,000 backups. Unless the whole run ends before the top of the hour, the hourly schedules
# fire at half past instead (same cost, a different minute), and the report says so.
minute=$((10#$(date -u +%M)))
if ((minute + 12 < 60)); then
    HOURLY="0 * * * *"
else
    HOURLY="$(((minute + 30) % 60)) * * * *"
fi

start_serve() { # config
    local _ ready
    touch "$work/serve.log"
    ready=$(grep -c 'web admin listening' "$work/serve.log" || true)
    NO_COLOR=1 DBKEEP_ADMIN_PASSWORD="$PASSWORD" "$DBKEEP_BIN" --config "$1" serve \
        >>"$work/serve.out" 2>>"$work/serve.log" &
    pid=$!
    for _ in $(seq 1 600); do
        # Ready once it logs that the web admin listens: after the catalog is open, the
        # schedules planned and the first user made (the socket is bound before all that).
        # No request is sent: even /healthz reads every database's latest backups, and the
        # idle figures are of a service nobody asked anything.
        if (($(grep -c 'web admin listening' "$work/serve.log" || true) > ready)) && port_in_use "$PORT"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$work/serve.log" >&2
    die "dbkeep serve did not start on $BASE"
}

# Log in like a browser (as bench/web.sh): CSRF cookie and field from GET /login, then POST.
login() {
    local jar="$work/cookies.txt" page csrf code session
    rm -f "$jar"
    page=$(curl -s -c "$jar" "$BASE/login")
    csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)
    [[ -n "$csrf" ]] || die "no csrf_token field on /login"
    code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" \
        --data-urlencode "username=admin" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "csrf_token=$csrf" "$BASE/login")
    session=$(awk '$6 == "dbkeep_session" { print $7 }' "$jar")
    if [[ "$code" != 303 && "$code" != 302 ]] || [[ -z "$session" ]]; then
        die "login failed (HTTP $code); serve log:$(printf '\n'; tail -n 20 "$work/serve.log")"
    fi
    COOKIE="Cookie: dbkeep_session=$session"
}

check() { # header path
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' -H "$1" "$BASE$2")
    [[ "$got" == 200 ]] || die "GET $2 answered $got instead of 200"
}

# wrk prints latencies as 812.00us, 3.20ms, 1.02s or 1.00m.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.0f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { printf "?" }
    }'
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}'; }

# CPU ticks of the server processes (backends) connected to database $1: "pid ticks" lines.
backend_ticks() {
    local p
    for p in $(pg postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"); do
        echo "$p $(ticks "$p")"
    done
}
# Ticks the backends of $2 used since the snapshot in file $1 (new backends count from zero).
backend_delta() {
    backend_ticks "$2" | awk 'NR == FNR { before[$1] = $2; next } { d += $2 - before[$1] } END { print d + 0 }' "$1" -
}
xacts() { pg postgres -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$1'"; }
server_now() { pg postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE current_setting('log_timezone'), 'YYYY-MM-DD HH24:MI:SS.MS')"; }

# The server's log entries for database $2 from byte $1 on, between server times $3 and $4
# (as server_now prints them; empty: no bound). A statement's SQL may go on over several
# lines: they are joined to their entry first.
log_entries() { # offset db [t0] [t1]
    tail -c +$(($1 + 1)) "$PG_LOG" |
        awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { if (entry != "") print entry; entry = $0; next }
             { entry = entry " " $0 } END { if (entry != "") print entry }' |
        awk -v db="@$2 " -v t0="${3:-}" -v t1="${4:-}" 'index($0, db) && index($0, "duration:") {
            t = $1 " " $2; if ((t0 == "" || t >= t0) && (t1 == "" || t < t1)) print }'
}
# "statements pool-checks prepares" in log entries on stdin, scaled by $1 (1: as counted).
# Each entry is one of "statement: SQL" (simple protocol; empty: the pool's check before each
# use), "parse NAME: SQL" (a prepare), "bind" and "execute NAME: SQL" (extended protocol).
count_entries() { # scale
    awk -v k="$1" '
        / statement: *$/ { ping++; next }
        / statement: / { stmt++; next }
        / parse [^ ]*: / { parse++; next }
        / execute [^ ]*: / { stmt++; next }
        END { printf "%.0f %.0f %.0f\n", stmt * k, ping * k, parse * k }'
}
# The server's own time for the entries on stdin: the sum of their logged durations, in ms.
server_ms() {
    awk '{ if (match($0, /duration: [0-9.]+ ms/)) s += substr($0, RSTART + 10, RLENGTH - 13) }
         END { printf "%.2f", s }'
}
# What the statements on stdin are: verb and table, most frequent first, counts scaled by $1.
statement_kinds() { # scale
    awk '/ execute [^ ]*: | statement: [^ ]/ {
            sub(/.* (execute [^ ]*|statement): /, "");
            verb = toupper($1); table = "";
            # The first FROM/INTO outside parentheses (not a subquery in the columns).
            depth = 0
            for (i = 1; i < NF; i++) {
                if (depth == 0 && toupper($i) ~ /^(FROM|INTO)$/) { table = $(i + 1); break }
                o = $i; c = $i; depth += gsub(/\(/, "", o) - gsub(/\)/, "", c)
            }
            if (verb == "UPDATE") table = $2;
            gsub(/[^A-Za-z_].*/, "", table);
            print verb (table != "" ? " " table : "") }' |
        sort | uniq -c | sort -rn | awk -v k="$1" '{ n = $1; $1 = ""; sub(/^ /, "");
            printf "%s%s %.0f", (NR > 1 ? ", " : ""), $0, n * k }'
}

# wrk against one target; sets W_RPS W_P50 W_P99 W_NON2XX W_ERRORS W_HWM W_CPU W_PGCPU.
run_wrk() { # label header path catalog-db-or-empty
    local label=$1 header=$2 path=$3 catdb=$4 out t0 before="$work/backends.before"
    check "$header" "$path"
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    : >"$before"
    [[ -n "$catdb" ]] && backend_ticks "$catdb" >"$before"
    t0=$(ticks "$pid")
    log "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency --timeout 60s $path ($label)"
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency --timeout 60s -H "$header" "$BASE$path")
    printf '%s\n' "$out" >"$work/wrk-$label.txt"
    kill -0 "$pid" 2>/dev/null || die "dbkeep serve died during the run"
    W_CPU=$(secs $(($(ticks "$pid") - t0)))
    W_PGCPU="—"
    [[ -n "$catdb" ]] && W_PGCPU=$(secs "$(backend_delta "$before" "$catdb")")
    W_HWM=$(status_kib VmHWM)
    W_RSS_AFTER=$(status_kib VmRSS)
    W_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    W_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    W_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    W_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    W_NON2XX=${W_NON2XX:-0}
    W_ERRORS=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    W_ERRORS=${W_ERRORS:-0}
}

verdict() { # value target -> met / MISSED (value < target)
    awk -v v="$1" -v t="$2" 'BEGIN {print (v + 0 < t + 0) ? "met" : "MISSED"}'
}
ratio() { awk -v v="$1" -v t="$2" 'BEGIN {printf "%.1f", v / t}'; }

# A configuration in $work/$1.toml with the catalog $2 ("" = SQLite beside it) and the
# [[databases]] entries on stdin.
write_config() { # name catalog-db
    {
        echo 'timezone = "UTC"'
        echo "listen = \"127.0.0.1:$PORT\""
        [[ -n "$2" ]] && echo "catalog = \"$PG_URL/$2\""
        cat
    } >"$work/$1.toml"
}

# ---------------------------------------------------------------------------
# 1. The history page and the API with 100,000 backups, on PostgreSQL and SQLite.
# Five databases as in bench/web.sh (four SQLite, one PostgreSQL never contacted: the
# schedules do not fire during a run).
# ---------------------------------------------------------------------------
SQLITE_DBS=(app auth billing analytics)
web_databases() {
    for db in "${SQLITE_DBS[@]}"; do
        printf '[[databases]]\nname = "%s"\nurl = "sqlite:%s.db"\nschedules = ["0 0 1 1 *"]\n' "$db" "$db"
    done
    printf '[[databases]]\nname = "shop"\nurl = "postgres://dbkeep@127.0.0.1:5432/shop"\nschedules = ["0 0 1 1 *"]\n'
}
for db in "${SQLITE_DBS[@]}"; do
    sqlite3 "$work/$db.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
done
fresh_db "$DB_WEB"
web_databases | write_config web-pg "$DB_WEB"
web_databases | write_config web-sqlite ""

log "creating the PostgreSQL catalog ($DB_WEB) with dbkeep"
"$DBKEEP_BIN" --config "$work/web-pg.toml" list >/dev/null

# As bench/web.sh: one backup every 10 minutes, round robin over the five databases, ids
# increasing with time and ending now; about 4 % failed (an error, no file); successes older
# than 30 days pruned, as retention would have; 90 % scheduled, 7 % manual, 3 % API.
log "seeding $ROWS backups into the PostgreSQL catalog"
now=$(date -u +%s)
seed_start=$(date +%s.%N)
pg "$DB_WEB" >/dev/null <<SQL
BEGIN;
SELECT setseed(0.42);
CREATE TEMP TABLE dbs (i int PRIMARY KEY, name text, kind text, compression text, ext text) ON COMMIT DROP;
INSERT INTO dbs VALUES
    (0, 'app', 'sqlite', 'none', '.db'),
    (1, 'auth', 'sqlite', 'none', '.db'),
    (2, 'billing', 'sqlite', 'zstd', '.db.zst'),
    (3, 'analytics', 'sqlite', 'gzip', '.db.gz'),
    (4, 'shop', 'postgres', 'gzip', '.sql.gz');
CREATE TEMP TABLE errors (i int PRIMARY KEY, text text) ON COMMIT DROP;
INSERT INTO errors VALUES
    (0, 'pg_dump failed (exit status 1): pg_dump: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
    (1, 'database is locked: gave up after waiting 30s for the source database'),
    (2, 'the copy failed its integrity check: quick_check returned "*** in database main *** Page 42: btree page has bad free space"'),
    (3, 'No space left on device (os error 28) while writing the backup file'),
    (4, 'timed out after 1h: the backup was cancelled');
WITH r AS (
    SELECT x,
           to_timestamp($now - ($ROWS - x) * 600) AS t,
           floor(random() * 1000)::int AS roll,
           200 + floor(random() * 60000)::int AS ms,
           x % 5 AS d
    FROM generate_series(1, $ROWS) AS x
), f AS (
    SELECT r.*, dbs.name, dbs.kind, dbs.compression,
           dbs.kind || '_backup_' || to_char(r.t AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MISS') || dbs.ext AS file
    FROM r JOIN dbs ON dbs.i = r.d
)
INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                     compression, started_at, finished_at, duration_ms, error, pruned_at)
SELECT x, name, kind,
       CASE WHEN roll < 40 THEN 'failed' ELSE 'success' END,
       CASE WHEN roll % 100 < 90 THEN 'scheduled' WHEN roll % 100 < 97 THEN 'manual' ELSE 'api' END,
       CASE WHEN roll >= 40 THEN file END,
       CASE WHEN roll >= 40 THEN '$work/backups/' || name || '/' || file END,
       CASE WHEN roll >= 40 THEN 100000 + floor(random() * 500000000)::bigint END,
       CASE WHEN roll >= 40 THEN md5(random()::text) || md5(random()::text) END,
       compression, t, t + ms * interval '1 millisecond', ms,
       CASE WHEN roll < 40 THEN (SELECT text FROM errors WHERE i = roll % 5) END,
       CASE WHEN roll >= 40 AND t < to_timestamp($now - 30 * 86400) THEN t + interval '30 days 60 seconds' END
FROM f;
SELECT setval(pg_get_serial_sequence('backups', 'id'), (SELECT max(id) FROM backups));
COMMIT;
VACUUM ANALYZE backups;
SQL
seed_s=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
counts=$(pg "$DB_WEB" -c "SELECT count(*) || ' rows: ' || count(*) FILTER (WHERE status = 'success') || ' success ('
    || count(pruned_at) || ' pruned), ' || count(*) FILTER (WHERE status = 'failed') || ' failed' FROM backups")
log "catalog: $counts (seeded in $seed_s s)"

# The same rows into a SQLite catalog made by dbkeep, times in its RFC 3339 text.
log "copying the rows into a SQLite catalog"
"$DBKEEP_BIN" --config "$work/web-sqlite.toml" list >/dev/null
ts() { echo "to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"; }
# (\copy takes one line.)
pg "$DB_WEB" -c "\\copy (SELECT id, database, kind, status, trigger, file_name, path, size_bytes, sha256, compression, $(ts started_at), $(ts finished_at), duration_ms, error, $(ts pruned_at) FROM backups ORDER BY id) TO '$work/backups.csv' WITH (FORMAT csv)"
sqlite3 "$work/dbkeep.sqlite3" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
CREATE TABLE seed (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                   compression, started_at, finished_at, duration_ms, error, pruned_at);
.import --csv $work/backups.csv seed
BEGIN;
INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                     compression, started_at, finished_at, duration_ms, error, pruned_at)
SELECT CAST(id AS INTEGER), database, kind, status, trigger, NULLIF(file_name, ''),
       NULLIF(path, ''), CAST(NULLIF(size_bytes, '') AS INTEGER), NULLIF(sha256, ''), compression,
       started_at, NULLIF(finished_at, ''), CAST(duration_ms AS INTEGER), NULLIF(error, ''),
       NULLIF(pruned_at, '')
FROM seed;
DROP TABLE seed;
COMMIT;
SQL
sqlite_counts=$(sqlite3 "$work/dbkeep.sqlite3" \
    "SELECT count(*) || ' rows: ' || sum(status = 'success') || ' success (' || count(pruned_at) || ' pruned), '
            || sum(status = 'failed') || ' failed' FROM backups")
[[ "$sqlite_counts" == "$counts" ]] || die "the SQLite catalog holds $sqlite_counts, not $counts"

web_rows=()
per_request=()
web_worst_pg=0
for catalog in pg sqlite; do
    TOKEN=$("$DBKEEP_BIN" --config "$work/web-$catalog.toml" token create "bench-$catalog" | tail -n 1)
    [[ -n "$TOKEN" ]] || die "no API token printed by 'dbkeep token create'"
    log "starting serve on the $catalog catalog"
    start_serve "$work/web-$catalog.toml"
    login
    catdb=""
    name=SQLite
    if [[ $catalog == pg ]]; then catdb=$DB_WEB name=PostgreSQL; fi
    for target in backups api; do
        if [[ $target == backups ]]; then
            run_wrk "$catalog-backups" "$COOKIE" /backups "$catdb"
            what="\`/backups\` | session cookie"
        else
            run_wrk "$catalog-api" "Authorization: Bearer $TOKEN" /api/v1/backups "$catdb"
            what="\`/api/v1/backups\` | bearer token"
        fi
        web_rows+=("| $name | $what | $W_RPS | $W_P50 | $W_P99 | $W_NON2XX | $W_ERRORS | $W_CPU | $W_PGCPU | $(mib "$W_HWM") |")
        if [[ $catalog == pg ]]; then
            web_worst_pg=$(awk -v a="$web_worst_pg" -v b="$W_P99" 'BEGIN {print (b > a) ? b : a}')
        fi
    done
    stop_serve
    # What one request asks the PostgreSQL catalog: its statements in the server's log (a
    # fresh serve, so that its connections log; the second request of each kind is counted).
    if [[ $catalog == pg && -n "$PG_LOG" ]]; then
        pg postgres -c "ALTER DATABASE $DB_WEB SET log_min_duration_statement = 0" >/dev/null
        start_serve "$work/web-pg.toml"
        login
        for target in /backups /api/v1/backups; do
            header=$COOKIE
            [[ $target == /api/* ]] && header="Authorization: Bearer $TOKEN"
            curl -s -o /dev/null -H "$header" "$BASE$target"
            sleep 0.3
            off=$(stat -c %s "$PG_LOG")
            curl -s -o /dev/null -H "$header" "$BASE$target"
            sleep 0.3
            read -r st pi pr < <(log_entries "$off" "$DB_WEB" | count_entries 1)
            kinds=$(log_entries "$off" "$DB_WEB" | statement_kinds 1)
            ms=$(log_entries "$off" "$DB_WEB" | server_ms)
            per_request+=("\`$target\`: $st statements ($kinds), $((st + pi + pr)) round trips to the server ($pr prepares, $pi pool checks), $ms ms of server time in all (the logged durations)")
        done
        stop_serve
        pg postgres -c "ALTER DATABASE $DB_WEB RESET log_min_duration_statement" >/dev/null
    fi
done
pg postgres -c "DROP DATABASE $DB_WEB WITH (FORCE)" >/dev/null

# ---------------------------------------------------------------------------
# Idle measurement helper (parts 2 and 3): statement logging on for the catalog database's new
# sessions, serve started, SETTLE s for start-up to reach pg_stat_database (a backend reports
# within about 10 s), then SECONDS_IDLE s measured. Sets I_* variables.
# ---------------------------------------------------------------------------
idle_measure() { # config catalog-db
    local config=$1 catdb=$2 spawn up x0 x1 c0 c1 t0 t1 t_up before="$work/backends.idle" off
    [[ -n "$PG_LOG" ]] && pg postgres -c "ALTER DATABASE $catdb SET log_min_duration_statement = 0" >/dev/null
    off=0
    [[ -n "$PG_LOG" ]] && off=$(stat -c %s "$PG_LOG")
    spawn=$(date +%s.%N)
    start_serve "$config"
    up=$(date +%s.%N)
    I_START=$(awk -v a="$spawn" -v b="$up" 'BEGIN {printf "%.1f", b - a}')
    sleep 1
    t_up=$(server_now)
    sleep "$((SETTLE - 1))"
    backend_ticks "$catdb" >"$before"
    x0=$(xacts "$catdb")
    c0=$(ticks "$pid")
    t0=$(server_now)
    log "measuring $SECONDS_IDLE s of idle time ($(grep -c '^\[\[databases\]\]' "$config") databases)"
    sleep "$SECONDS_IDLE"
    t1=$(server_now)
    c1=$(ticks "$pid")
    x1=$(xacts "$catdb")
    I_PGCPU=$(secs "$(backend_delta "$before" "$catdb")")
    I_RSS=$(status_kib VmRSS)
    I_HWM=$(status_kib VmHWM)
    I_THREADS=$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")
    I_CPU=$(secs $((c1 - c0)))
    I_CPU_PCT=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v s="$SECONDS_IDLE" 'BEGIN {printf "%.3f", 100 * t / hz / s}')
    I_XACTS=$(awk -v d=$((x1 - x0)) -v s="$SECONDS_IDLE" 'BEGIN {printf "%.0f", d * 60 / s}')
    I_FIRES=$(pg "$catdb" -c "SELECT count(*) FROM fires")
    # Then what one /healthz (a monitor's poll) takes, and the memory after it.
    I_HEALTHZ_MS=$(curl -s -o /dev/null -w '%{time_total}' "$BASE/healthz" | awk '{printf "%.0f", $1 * 1000}')
    I_RSS_HEALTHZ=$(status_kib VmRSS)
    stop_serve
    [[ -n "$PG_LOG" ]] && pg postgres -c "ALTER DATABASE $catdb RESET log_min_duration_statement" >/dev/null
    I_STMTS="—" I_PINGS="—" I_PREPARES="—" I_KINDS="—" I_START_STMTS="—"
    if [[ -n "$PG_LOG" ]]; then
        log_entries "$off" "$catdb" "$t0" "$t1" >"$work/idle-$catdb.log"
        local k
        k=$(awk -v s="$SECONDS_IDLE" 'BEGIN {print 60 / s}')
        read -r I_STMTS I_PINGS I_PREPARES < <(count_entries "$k" <"$work/idle-$catdb.log")
        I_KINDS=$(statement_kinds "$k" <"$work/idle-$catdb.log")
        I_KINDS=${I_KINDS:-none}
        # Start-up: from the spawn to a second after serve logged that it listens.
        read -r I_START_STMTS _ < <(log_entries "$off" "$catdb" "" "$t_up" | count_entries 1)
    fi
}

# ---------------------------------------------------------------------------
# 2. 1,000 databases, each hourly, on a PostgreSQL catalog. All point at one small SQLite
# file (nothing is backed up during the run); each has 100 hours of hourly history.
# ---------------------------------------------------------------------------
sqlite3 "$work/one.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
fresh_db "$DB_MANY"
for i in $(seq 1 "$DATABASES"); do
    printf '[[databases]]\nname = "db%04d"\nurl = "sqlite:one.db"\nschedules = ["%s"]\n' "$i" "$HOURLY"
done | write_config many "$DB_MANY"
"$DBKEEP_BIN" --config "$work/many.toml" list >/dev/null
many_rows=$((DATABASES * HISTORY))
log "seeding $many_rows backups ($HISTORY hourly per database)"
pg "$DB_MANY" >/dev/null <<SQL
BEGIN;
SELECT setseed(0.42);
WITH r AS (
    SELECT x,
           'db' || lpad((1 + (x - 1) % $DATABASES)::text, 4, '0') AS name,
           to_timestamp($now - ($many_rows - x) * 3600.0 / $DATABASES) AS t,
           floor(random() * 1000)::int AS roll,
           200 + floor(random() * 5000)::int AS ms
    FROM generate_series(1, $many_rows) AS x
), f AS (
    SELECT r.*, 'sqlite_backup_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MISS') || '.db.zst' AS file FROM r
)
INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                     compression, started_at, finished_at, duration_ms, error)
SELECT x, name, 'sqlite',
       CASE WHEN roll < 40 THEN 'failed' ELSE 'success' END, 'scheduled',
       CASE WHEN roll >= 40 THEN file END,
       CASE WHEN roll >= 40 THEN '$work/backups/' || name || '/' || file END,
       CASE WHEN roll >= 40 THEN 10000 + floor(random() * 5000000)::bigint END,
       CASE WHEN roll >= 40 THEN md5(random()::text) || md5(random()::text) END,
       'zstd', t, t + ms * interval '1 millisecond', ms,
       CASE WHEN roll < 40 THEN 'database is locked: gave up after waiting 30s for the source database' END
FROM f;
SELECT setval(pg_get_serial_sequence('backups', 'id'), (SELECT max(id) FROM backups));
COMMIT;
VACUUM ANALYZE backups;
SQL

idle_measure "$work/many.toml" "$DB_MANY"
M_START=$I_START M_RSS=$I_RSS M_HWM=$I_HWM M_THREADS=$I_THREADS M_CPU=$I_CPU M_CPU_PCT=$I_CPU_PCT
M_FIRES=$I_FIRES M_PGCPU=$I_PGCPU M_XACTS=$I_XACTS M_STMTS=$I_STMTS M_PINGS=$I_PINGS
M_PREPARES=$I_PREPARES M_KINDS=$I_KINDS M_START_STMTS=$I_START_STMTS
M_HEALTHZ_MS=$I_HEALTHZ_MS M_RSS_HEALTHZ=$I_RSS_HEALTHZ

log "starting serve with $DATABASES databases for the dashboard"
start_serve "$work/many.toml"
login
# One request at a time first: how long a single dashboard takes, and its size.
for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total} %{size_download}\n' -H "$COOKIE" "$BASE/"
done >"$work/single.txt"
single_ms=$(sort -n "$work/single.txt" | awk '{ v[NR] = $1 * 1000 } END { printf "%.0f", v[int((NR + 1) / 2)] }')
page_mb=$(awk 'END { printf "%.1f", $2 / 1e6 }' "$work/single.txt")
# The API's view of the same databases (verdicts, schedules and each schedule's last fire).
check "$COOKIE" /api/v1/databases
for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total} %{size_download}\n' -H "$COOKIE" "$BASE/api/v1/databases"
done >"$work/single-api.txt"
api_ms=$(sort -n "$work/single-api.txt" | awk '{ v[NR] = $1 * 1000 } END { printf "%.0f", v[int((NR + 1) / 2)] }')
api_mb=$(awk 'END { printf "%.1f", $2 / 1e6 }' "$work/single-api.txt")
run_wrk dashboard "$COOKIE" / "$DB_MANY"
D_RPS=$W_RPS D_P50=$W_P50 D_P99=$W_P99 D_NON2XX=$W_NON2XX D_ERRORS=$W_ERRORS D_HWM=$W_HWM
D_CPU=$W_CPU D_PGCPU=$W_PGCPU D_RSS_AFTER=$W_RSS_AFTER

# Where the time goes when the dashboard misses its target: perf over a few requests one at
# a time, and the server's own time for the page's main catalog query.
profile=()
if [[ "$(verdict "$D_P99" "$DASH_P99_TARGET_MS")" == MISSED ]]; then
    if command -v perf >/dev/null 2>&1; then
        log "profiling serve with perf over up to 10 dashboard requests"
        perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" \
            -- sleep 6 >/dev/null 2>&1 &
        perf_pid=$!
        sleep 0.5
        profiled=0
        while kill -0 "$perf_pid" 2>/dev/null && ((profiled < 10)); do
            curl -s -o /dev/null -H "$COOKIE" "$BASE/"
            profiled=$((profiled + 1))
        done
        wait "$perf_pid" 2>/dev/null || true
        perf_pid=
        log "reading the profile"
        # Inclusive share of dbkeep's own functions (plain names, not generic adapters), and
        # the top self-time symbols.
        mapfile -t inclusive < <(perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
            grep -v '^#' | grep '%' |
            awk '{c = $1; $1 = $2 = $3 = ""; sub(/^ +/, ""); sub(/ +- +- *$/, ""); print c "\t" $0}' |
            grep -E $'\t''(<?dbkeep::[A-Za-z_:<> ]+>?(::[a-z_]+)?)$' | awk -F'\t' '!seen[$2]++' | head -n 10)
        mapfile -t selfs < <(perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
            grep -v '^#' | grep '%' |
            awk '{c = $1; $1 = $2 = ""; sub(/^ +/, ""); sub(/ +- +- *$/, ""); print c "\t" $0}' | head -n 5)
        profile+=("perf (\`perf record -F 499 --call-graph dwarf\` on serve, $profiled dashboard requests one after the other), share of serve's CPU samples:")
        profile+=("")
        profile+=("| inclusive | function |")
        profile+=("|---:|---|")
        for l in "${inclusive[@]}"; do profile+=("| ${l%%$'\t'*} | \`${l#*$'\t'}\` |"); done
        profile+=("")
        profile+=("| self | symbol |")
        profile+=("|---:|---|")
        for l in "${selfs[@]}"; do profile+=("| ${l%%$'\t'*} | \`${l#*$'\t'}\` |"); done
        profile+=("")
    fi
    # The page's read of every database's 30 newest rows, as dbkeep sends it.
    explain=$(pg "$DB_MANY" -c "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM unnest((SELECT array_agg('db' || lpad(i::text, 4, '0')) FROM generate_series(1, $DATABASES) i)) WITH ORDINALITY AS wanted(name, n)
        CROSS JOIN LATERAL (SELECT * FROM backups WHERE backups.database = wanted.name AND (NULL::text IS NULL OR backups.status = NULL) ORDER BY backups.id DESC LIMIT 30) AS backups
        ORDER BY wanted.n, backups.id DESC")
    exec_ms=$(awk '/Execution Time:/ {print $3}' <<<"$explain")
    rows_read=$(awk '/Incremental Sort|Sort / && /actual/ { if (match($0, /rows=[0-9]+ loops/)) { s = substr($0, RSTART + 5); print s + 0; exit } }' <<<"$explain")
    profile+=("Catalog side: the page's main query (each database's 30 newest backups, \`recent_of_each\`) returns ${rows_read:-?} rows and takes ${exec_ms:-?} ms on the server (\`EXPLAIN ANALYZE\`); during the wrk run the catalog's backends used $D_PGCPU s of CPU against serve's $D_CPU s.")
fi
stop_serve

# ---------------------------------------------------------------------------
# 3. One database, hourly, on its own PostgreSQL catalog: the idle traffic of a small setup.
# ---------------------------------------------------------------------------
fresh_db "$DB_ONE"
printf '[[databases]]\nname = "app"\nurl = "sqlite:one.db"\nschedules = ["%s"]\n' "$HOURLY" |
    write_config one "$DB_ONE"
"$DBKEEP_BIN" --config "$work/one.toml" list >/dev/null
idle_measure "$work/one.toml" "$DB_ONE"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
echo "### Catalog on PostgreSQL"
echo
echo "- $(date -u +%Y-%m-%d), $(nproc) cores; dbkeep $("$DBKEEP_BIN" --version | awk '{print $2}'); $(pg postgres -c 'SHOW server_version' | awk '{print "PostgreSQL", $1}') on the same machine; $(sqlite3 --version | awk '{print "sqlite3", $1}'); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
echo "- wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency --timeout 60s, one target after the other, on the same machine as serve and PostgreSQL"
echo "- dbkeep built from commit $BUILT_FROM$([[ -n "${DBKEEP_BIN_GIVEN:-}" ]] && echo " (DBKEEP_BIN given: $DBKEEP_BIN)"); hourly schedule used: \`$HOURLY\`"
echo
echo "#### History and API with $ROWS backups"
echo
echo "Catalog: $counts; 5 databases (seeded with SQL in $seed_s s; the SQLite catalog holds the same rows)."
echo
echo "| Catalog | Target | Auth | Requests/s | p50 ms | p99 ms | Non-2xx | Socket errors | serve CPU s | PostgreSQL CPU s | Peak RSS MiB |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${web_rows[@]}"
echo
echo "Target: PostgreSQL p99 < $WEB_P99_TARGET_MS ms: $(verdict "$web_worst_pg" "$WEB_P99_TARGET_MS") (worst $web_worst_pg ms)."
if ((${#per_request[@]})); then
    echo
    echo "One request on the PostgreSQL catalog, from the server's log:"
    echo
    printf -- '- %s\n' "${per_request[@]}"
fi
echo
echo "#### $DATABASES databases, each hourly (\`$HOURLY\`), PostgreSQL catalog"
echo
echo "$many_rows backups in the catalog ($HISTORY hourly per database). Start-up (until serve logs that it listens): $M_START s. Idle for $SECONDS_IDLE s after $SETTLE s:"
echo
echo "| RSS MiB | Peak RSS MiB | CPU s over ${SECONDS_IDLE} s | CPU % | PostgreSQL CPU s | Threads | Fires during the run | then one /healthz: ms | RSS after it MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| $(mib "$M_RSS") | $(mib "$M_HWM") | $M_CPU | $M_CPU_PCT | $M_PGCPU | $M_THREADS | $M_FIRES | $M_HEALTHZ_MS | $(mib "$M_RSS_HEALTHZ") |"
echo
echo "Dashboard (\`/\`, session cookie): one request alone takes $single_ms ms for $page_mb MB of HTML;"
echo "\`GET /api/v1/databases\` (every database with its schedules and their last fires) $api_ms ms for $api_mb MB of JSON."
echo
echo "| Target | Requests/s | p50 ms | p99 ms | Non-2xx | Socket errors | serve CPU s | PostgreSQL CPU s | Peak RSS MiB | RSS after MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| \`/\` | $D_RPS | $D_P50 | $D_P99 | $D_NON2XX | $D_ERRORS | $D_CPU | $D_PGCPU | $(mib "$D_HWM") | $(mib "$D_RSS_AFTER") |"
echo
rss_v=$(verdict "$(mib "$M_RSS")" "$RSS_TARGET_MIB")
cpu_v=$(verdict "$M_CPU_PCT" "$IDLE_CPU_TARGET_PCT")
dash_v=$(verdict "$D_P99" "$DASH_P99_TARGET_MS")
echo "Targets: idle RSS < $RSS_TARGET_MIB MiB: $rss_v ($(mib "$M_RSS") MiB); idle CPU near zero (< $IDLE_CPU_TARGET_PCT %): $cpu_v ($M_CPU_PCT %); dashboard p99 < $DASH_P99_TARGET_MS ms: $dash_v ($D_P99 ms$([[ $dash_v == MISSED ]] && echo ", $(ratio "$D_P99" "$DASH_P99_TARGET_MS")× the target"))."
if ((${#profile[@]})); then
    echo
    printf '%s\n' "${profile[@]}"
fi
echo
echo "#### Catalog traffic of an idle \`dbkeep serve\`, per minute"
echo
echo "Transactions: \`xact_commit + xact_rollback\` of the catalog database in \`pg_stat_database\` over $SECONDS_IDLE s (read from another database). Statements: from the server's log with \`log_min_duration_statement = 0\` on the catalog database only; a pool check is the empty query the connection pool sends before each use, a prepare is the statement's parse (one round trip each). Start-up statements: from the spawn to a second after serve logged that it listens."
echo
echo "| Configuration | Transactions/min | Statements/min | Pool checks/min | Prepares/min | Statements by kind (per min) | serve CPU s | PostgreSQL CPU s | Start-up statements |"
echo "|---|---:|---:|---:|---:|---|---:|---:|---:|"
echo "| $DATABASES databases | $M_XACTS | $M_STMTS | $M_PINGS | $M_PREPARES | $M_KINDS | $M_CPU | $M_PGCPU | $M_START_STMTS |"
echo "| 1 database | $I_XACTS | $I_STMTS | $I_PINGS | $I_PREPARES | $I_KINDS | $I_CPU | $I_PGCPU | $I_START_STMTS |"
