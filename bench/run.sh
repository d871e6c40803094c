#!/usr/bin/env bash
# Measured pipelines get their arguments as "$1", "$2" of a single-quoted bash -c.
# shellcheck disable=SC2016

# Benchmark dbkeep against the usual command-line ways of backing up the same
# databases. See bench/README.md for what is measured and why.
#
# Usage: bench/run.sh > results.md      (progress goes to stderr)
#
# Environment (defaults in brackets):
#   DBKEEP_BENCH_PG_URL  server to use, without database [postgres://postgres@127.0.0.1:5432]
#   SCALE                pgbench scale of the PostgreSQL database; 70 is about 1 GB [70]
#   FRESH=1              rebuild the PostgreSQL database even if it exists with that scale [0]
#   ROUNDS               rounds per measurement; medians are reported [3]
#   SQLITE_MB            size of the SQLite database to build, in MiB [1024]
#   WRITER_INTERVAL_MS   pause between the concurrent writer's commits [2]
#   TIMEOUT              seconds before a command counts as "did not finish" [180]
#   BENCH_TMPDIR         where temporary files go; needs about 3x SQLITE_MB free [$TMPDIR or /tmp]
#   DBKEEP_BIN           benchmark this dbkeep binary instead of building one
#   SKIP_DBKEEP=1        only measure the baseline tools (no build of dbkeep)

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

PG_BASE_URL=${DBKEEP_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_BASE_URL=${PG_BASE_URL%/}
SCALE=${SCALE:-70}
FRESH=${FRESH:-0}
ROUNDS=${ROUNDS:-3}
SQLITE_MB=${SQLITE_MB:-1024}
WRITER_INTERVAL_MS=${WRITER_INTERVAL_MS:-2}
TIMEOUT=${TIMEOUT:-180}
SKIP_DBKEEP=${SKIP_DBKEEP:-0}
PG_DB=dbkeep_bench
PG_ADMIN_URL="$PG_BASE_URL/postgres"
PG_DB_URL="$PG_BASE_URL/$PG_DB"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Requirements
# ---------------------------------------------------------------------------
need() { # command debian-package
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found (Debian: apt-get install $2)"
}
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"
need pg_dump postgresql-client
need psql postgresql-client
need pgbench postgresql
need sqlite3 sqlite3
need gzip gzip
need zstd zstd
need python3 python3
need timeout coreutils
[[ -n "${DBKEEP_BIN:-}" || "${SKIP_DBKEEP:-0}" == 1 ]] || need cargo "a Rust toolchain (rustup.rs)"
python3 -c 'import sqlite3' 2>/dev/null || die "python3 lacks the sqlite3 module"

# ---------------------------------------------------------------------------
# Workspace and cleanup
# ---------------------------------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/dbkeep-bench.XXXXXX")
WRITER_PID=""
MEASURE_PID=""
RESULTS="$WORK/results.tsv" # section label status wall cpu rss_kib bytes valid rate errors max_ms

stop_writer() {
    [[ -n "$WRITER_PID" ]] || return 0
    kill -TERM "$WRITER_PID" 2>/dev/null || true
    # The writer may sit in a 10 s busy wait before it sees the signal.
    local _
    for _ in $(seq 1 150); do
        kill -0 "$WRITER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$WRITER_PID" 2>/dev/null || true
    wait "$WRITER_PID" 2>/dev/null || true
    WRITER_PID=""
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local status=$?
    if [[ -n "$MEASURE_PID" ]]; then
        # timeout passes the signal on to the measured command's process group.
        kill -TERM "$MEASURE_PID" 2>/dev/null || true
        wait "$MEASURE_PID" 2>/dev/null || true
    fi
    stop_writer
    rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------
# measure CMD... : runs CMD under /usr/bin/time and timeout. Sets M_STATUS
# (ok|timeout|failed), M_WALL, M_CPU (user+sys, all waited-for children
# included), M_RSS (KiB, largest single process).
measure() {
    local tf="$WORK/time.out" rc=0 user sys
    rm -f "$tf"
    # timeout outside time: on expiry it signals its whole process group
    # (time and the command). In the background plus `wait` so that a signal
    # to this script is handled at once, not when the command ends.
    timeout -k 10 "$TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" \
        </dev/null >"$WORK/cmd.out" 2>"$WORK/cmd.err" &
    MEASURE_PID=$!
    wait "$MEASURE_PID" || rc=$?
    MEASURE_PID=""
    case $rc in
        124 | 137)
            M_STATUS=timeout M_WALL=$TIMEOUT M_CPU=0 M_RSS=0
            return
            ;;
        0) M_STATUS=ok ;;
        *)
            M_STATUS=failed
            log "  command failed (exit $rc): $*"
            tail -n 5 "$WORK/cmd.err" >&2 || true
            ;;
    esac
    # time prefixes a "Command exited with non-zero status" line on failure.
    read -r M_WALL user sys M_RSS < <(tail -n 1 "$tf")
    M_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

# record SECTION LABEL BYTES VALID [COMMITS_PER_S ERRORS MAX_MS]
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$M_STATUS" "$M_WALL" "$M_CPU" \
        "$M_RSS" "$3" "$4" "${5:-}" "${6:-}" "${7:-}" >>"$RESULTS"
    log "  $2: $M_STATUS, ${M_WALL}s wall, ${M_CPU}s cpu, $((M_RSS / 1024)) MiB, $3 bytes, valid=$4${5:+, writer $5 commits/s, $6 errors, slowest commit ${7} ms}"
}

# A tool that already ran out of time is not retried in later rounds.
timed_out_before() { # section label
    [[ -f "$RESULTS" ]] &&
        awk -F'\t' -v s="$1" -v l="$2" '$1 == s && $2 == l && $3 == "timeout" { found = 1 } END { exit !found }' "$RESULTS"
}

file_size() { if [[ -f "$1" ]]; then stat -c %s "$1"; else echo 0; fi; }

# The single backup file dbkeep wrote into a fresh backup directory.
dbkeep_output() { # backup_dir database
    find "$1/$2" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | head -n 1
}

# A dump is valid if the compressed stream is intact and pg_dump finished it.
pg_dump_valid() { # file decompressor
    [[ -s "$1" ]] || return 1
    "$2" -t -q "$1" 2>/dev/null || return 1
    "$2" -dc "$1" | tail -c 300 | grep -q 'PostgreSQL database dump complete'
}

# A SQLite copy is valid if it opens like a restored file would (read-write),
# passes quick_check and has every bulk row.
sqlite_valid() { # file expected_items
    [[ -s "$1" ]] || return 1
    local out
    out=$(sqlite3 "$1" 'PRAGMA quick_check;' 'SELECT count(*) FROM items;' 2>&1) || true
    [[ "$out" == "ok"$'\n'"$2" ]] && return 0
    log "  invalid copy: $(head -c 300 <<<"$out" | tr '\n' ' ')"
    return 1
}

# yes/no from a validity check; n/a when the command did not succeed.
check() {
    if [[ "$M_STATUS" != ok ]]; then
        echo n/a
    elif "$@"; then
        echo yes
    else
        echo no
    fi
}

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
DBKEEP=""
if [[ -n "${DBKEEP_BIN:-}" && "$SKIP_DBKEEP" != 1 ]]; then
    DBKEEP=$(command -v "$DBKEEP_BIN") || die "DBKEEP_BIN=$DBKEEP_BIN is not executable"
elif [[ "$SKIP_DBKEEP" != 1 ]]; then
    log "building dbkeep (release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    DBKEEP="${CARGO_TARGET_DIR:-$ROOT/target}/release/dbkeep"
    [[ -x "$DBKEEP" ]] || die "built binary not found at $DBKEEP"
fi

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
pg_q() { psql -X -w -q -At -v ON_ERROR_STOP=1 "$@"; }

pg_q "$PG_ADMIN_URL" -c 'select 1' >/dev/null || die "cannot connect to $PG_ADMIN_URL"

# Reuse an existing database of the right scale: building it takes minutes.
pg_has_scale() {
    [[ "$(pg_q "$PG_ADMIN_URL" -c "select 1 from pg_database where datname = '$PG_DB'")" == 1 ]] || return 1
    local counts
    counts=$(pg_q "$PG_DB_URL" -F ' ' \
        -c 'select (select count(*) from pgbench_branches), (select count(*) from pgbench_accounts)' \
        2>/dev/null) || return 1
    [[ "$counts" == "$SCALE $((SCALE * 100000))" ]]
}

if [[ "$FRESH" == 1 ]] || ! pg_has_scale; then
    log "creating PostgreSQL database $PG_DB (pgbench scale $SCALE)"
    pg_q "$PG_ADMIN_URL" -c "drop database if exists $PG_DB" -c "create database $PG_DB"
    pgbench -i -s "$SCALE" -q "$PG_DB_URL" 2>&1 | tail -n 1 >&2
else
    log "reusing PostgreSQL database $PG_DB (scale $SCALE)"
fi
pg_q "$PG_DB_URL" -c checkpoint
PG_DB_SIZE=$(pg_q "$PG_DB_URL" -c "select pg_database_size(current_database())")
PG_SERVER_VERSION=$(pg_q "$PG_DB_URL" -c 'show server_version')

PGCONF="$WORK/pg"
mkdir -p "$PGCONF"
cat >"$PGCONF/dbkeep.toml" <<EOF
# Two entries for the same database, to compare the compressors.
[[databases]]
name = "pg_gzip"
url = "$PG_DB_URL"
compression = "gzip"

[[databases]]
name = "pg_zstd"
url = "$PG_DB_URL"
compression = "zstd"
EOF

# Untimed pass so every round sees the same warm caches.
log "warming up (pg_dump > /dev/null)"
pg_dump -d "$PG_DB_URL" >/dev/null

for round in $(seq 1 "$ROUNDS"); do
    log "PostgreSQL round $round/$ROUNDS"
    out="$WORK/pg_out"

    measure bash -c 'set -o pipefail; pg_dump -d "$1" >/dev/null' _ "$PG_DB_URL"
    record pg "pg_dump > /dev/null (floor)" 0 n/a

    measure bash -c 'set -o pipefail; pg_dump -d "$1" | gzip -6 >"$2"' _ "$PG_DB_URL" "$out.sql.gz"
    record pg "pg_dump | gzip -6" "$(file_size "$out.sql.gz")" "$(check pg_dump_valid "$out.sql.gz" gzip)"
    rm -f "$out.sql.gz"

    measure bash -c 'set -o pipefail; pg_dump -d "$1" | zstd -3 -q >"$2"' _ "$PG_DB_URL" "$out.sql.zst"
    record pg "pg_dump | zstd -3" "$(file_size "$out.sql.zst")" "$(check pg_dump_valid "$out.sql.zst" zstd)"
    rm -f "$out.sql.zst"

    if [[ -n "$DBKEEP" ]]; then
        for variant in gzip zstd; do
            bdir="$WORK/pg_backups"
            rm -rf "$bdir"
            measure env DBKEEP_BACKUP_DIR="$bdir" "$DBKEEP" --config "$PGCONF/dbkeep.toml" \
                backup --database "pg_$variant" --no-cleanup
            f=$(dbkeep_output "$bdir" "pg_$variant")
            record pg "dbkeep backup (compression $variant)" "$(file_size "$f")" \
                "$(check pg_dump_valid "$f" "$variant")"
            rm -rf "$bdir"
        done
    fi
done

# ---------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------
SQ="$WORK/sqlite"
mkdir -p "$SQ"
SRC="$SQ/app.db"

# Rows of ~1 KiB: 800 random (incompressible) bytes plus text and an index,
# added in transactions of up to 50,000 rows until the file reaches the target.
log "building SQLite database (~$SQLITE_MB MiB)"
sqlite3 "$SRC" >/dev/null <<'EOF'
PRAGMA journal_mode = WAL;
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX items_name ON items (name);
CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, note TEXT NOT NULL);
EOF
target_bytes=$((SQLITE_MB * 1024 * 1024))
while [[ $(file_size "$SRC") -lt $target_bytes ]]; do
    rows=$(((target_bytes - $(file_size "$SRC")) / 1050 + 1))
    [[ $rows -le 50000 ]] || rows=50000
    sqlite3 "$SRC" >/dev/null <<EOF
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $rows)
INSERT INTO items (name, created_at, payload)
SELECT 'item-' || lower(hex(randomblob(6))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), randomblob(800)
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOF
done
ITEMS=$(sqlite3 "$SRC" 'SELECT count(*) FROM items;')
SQLITE_SIZE=$(file_size "$SRC")
log "SQLite database: $((SQLITE_SIZE / 1048576)) MiB, $ITEMS rows"

SQCONF="$SQ/conf"
mkdir -p "$SQCONF"
cat >"$SQCONF/dbkeep.toml" <<EOF
[[databases]]
name = "sqlite"
url = "sqlite:$SRC"
compression = "none"
EOF

# Commits one row per transaction, WRITER_INTERVAL_MS apart, like a busy web
# app would; counts commits, errors and the slowest commit until SIGTERM.
cat >"$SQ/writer.py" <<'EOF'
import signal
import sqlite3
import sys
import time

db, interval_ms, stats_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
stop = False


def on_signal(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)

conn = sqlite3.connect(db, timeout=10, isolation_level=None)
conn.execute("PRAGMA busy_timeout = 10000")
conn.execute("PRAGMA synchronous = NORMAL")
commits = errors = 0
max_ms = 0.0
last_error = ""
started = time.monotonic()
while not stop:
    t0 = time.monotonic()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events (at, note) VALUES (?, ?)", (time.time(), "x" * 100))
        conn.execute("COMMIT")
        commits += 1
    except sqlite3.Error as e:
        errors += 1
        last_error = str(e)
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    max_ms = max(max_ms, (time.monotonic() - t0) * 1000)
    time.sleep(interval_ms / 1000)

rate = commits / max(time.monotonic() - started, 1e-9)
with open(stats_path, "w") as f:
    f.write(f"{rate:.1f} {errors} {max_ms:.1f} {commits} {last_error}\n")
EOF

start_writer() {
    rm -f "$SQ/writer.stats"
    python3 "$SQ/writer.py" "$SRC" "$WRITER_INTERVAL_MS" "$SQ/writer.stats" &
    WRITER_PID=$!
    sleep 1 # let it reach its steady pace before the measured command starts
}

W_RATE="" W_ERRORS="" W_MAX=""
finish_writer() {
    stop_writer
    W_RATE="" W_ERRORS="" W_MAX=""
    if [[ -s "$SQ/writer.stats" ]]; then
        local commits last
        read -r W_RATE W_ERRORS W_MAX commits last <"$SQ/writer.stats"
        log "  writer: $commits commits, $W_ERRORS errors${last:+, last error: $last}"
    else
        log "  writer left no statistics (killed?)"
    fi
}

# One measurement of every SQLite tool; with_writer=1 runs the writer meanwhile.
sqlite_round() { # section with_writer
    local section=$1 with_writer=$2 label dst f bdir
    for label in "sqlite3 VACUUM INTO" "sqlite3 .backup" "cp + sync" "dbkeep backup (compression none)"; do
        [[ "$label" != dbkeep* || -n "$DBKEEP" ]] || continue
        if timed_out_before "$section" "$label"; then
            log "  $label: skipped (did not finish in an earlier round)"
            continue
        fi
        # A fresh folder each time: a killed .backup leaves a hot journal
        # (copy.db-journal) that would be "rolled back" into the next copy.
        rm -rf "$SQ/copy" "$SQ/backups"
        mkdir "$SQ/copy"
        dst="$SQ/copy/copy.db"
        bdir="$SQ/backups"
        sqlite3 "$SRC" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
        cat "$SRC" >/dev/null # same warm page cache for everyone
        [[ "$with_writer" == 0 ]] || start_writer
        case $label in
            "sqlite3 VACUUM INTO") measure sqlite3 "$SRC" "VACUUM INTO '$dst'" ;;
            "sqlite3 .backup") measure sqlite3 "$SRC" ".backup '$dst'" ;;
            "cp + sync") measure bash -c 'cp "$1" "$2" && sync "$2"' _ "$SRC" "$dst" ;;
            dbkeep*)
                measure env DBKEEP_BACKUP_DIR="$bdir" "$DBKEEP" --config "$SQCONF/dbkeep.toml" \
                    backup --database sqlite --no-cleanup
                f=$(dbkeep_output "$bdir" sqlite)
                if [[ -n "$f" ]]; then mv "$f" "$dst"; fi
                ;;
        esac
        if [[ "$with_writer" == 0 ]]; then
            record "$section" "$label" "$(file_size "$dst")" "$(check sqlite_valid "$dst" "$ITEMS")"
        else
            finish_writer
            record "$section" "$label" "$(file_size "$dst")" "$(check sqlite_valid "$dst" "$ITEMS")" \
                "$W_RATE" "$W_ERRORS" "$W_MAX"
        fi
        rm -rf "$SQ/copy" "$bdir"
    done
}

for round in $(seq 1 "$ROUNDS"); do
    log "SQLite idle, round $round/$ROUNDS"
    sqlite_round sqlite_idle 0
done
for round in $(seq 1 "$ROUNDS"); do
    log "SQLite with a writer committing every ${WRITER_INTERVAL_MS} ms, round $round/$ROUNDS"
    sqlite_round sqlite_writer 1
done

# ---------------------------------------------------------------------------
# Report (markdown on stdout)
# ---------------------------------------------------------------------------
median() { # numbers on stdin
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print ""; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Values of one column for SECTION/LABEL; with ok_only=1, only finished runs.
column() { # section label column ok_only
    awk -F'\t' -v s="$1" -v l="$2" -v c="$3" -v o="$4" \
        '$1 == s && $2 == l && (o == 0 || $3 == "ok") && $c != "" { print $c }' "$RESULTS"
}

count() { # section label column value
    awk -F'\t' -v s="$1" -v l="$2" -v c="$3" -v v="$4" '$1 == s && $2 == l && $c == v' "$RESULTS" | wc -l
}

fmt() { # value divisor decimals ("—" when empty)
    awk -v v="$1" -v d="$2" -v p="$3" 'BEGIN { if (v == "") print "—"; else printf "%.*f\n", p, v / d }'
}

table() { # section with_writer
    local section=$1 with_writer=$2 label cell n failed timeouts invalid wall cpu rss size valid
    if [[ "$with_writer" == 1 ]]; then
        echo "| Tool | Wall s | CPU s | Peak RSS MiB | Output MB | Valid | Writer commits/s | Writer errors | Slowest commit ms |"
        echo "|---|---:|---:|---:|---:|---|---:|---:|---:|"
    else
        echo "| Tool | Wall s | CPU s | Peak RSS MiB | Output MB | Valid |"
        echo "|---|---:|---:|---:|---:|---|"
    fi
    while IFS= read -r label; do
        n=$(column "$section" "$label" 3 0 | wc -l)
        failed=$(count "$section" "$label" 3 failed)
        timeouts=$(count "$section" "$label" 3 timeout)
        invalid=$(count "$section" "$label" 8 no)
        if [[ $timeouts -gt 0 ]]; then
            wall="did not finish (> $TIMEOUT s)" cpu="—" rss="—" size="—" valid="—"
        elif [[ $failed -gt 0 ]]; then
            wall="failed ($failed of $n runs)" cpu="—" rss="—" size="—" valid="—"
        else
            wall=$(fmt "$(column "$section" "$label" 4 1 | median)" 1 2)
            cpu=$(fmt "$(column "$section" "$label" 5 1 | median)" 1 2)
            rss=$(fmt "$(column "$section" "$label" 6 1 | median)" 1024 0)
            size=$(fmt "$(column "$section" "$label" 7 1 | median)" 1000000 1)
            if [[ "$label" == *floor* ]]; then
                size="—" valid="—"
            elif [[ $invalid -eq 0 ]]; then
                valid="yes"
            else
                valid="**no** ($invalid of $n)"
            fi
        fi
        cell=${label//|/\\|} # a "|" inside a cell would split it
        if [[ "$with_writer" == 1 ]]; then
            # The writer's figures cover unfinished runs too: how it fared meanwhile.
            echo "| $cell | $wall | $cpu | $rss | $size | $valid" \
                "| $(fmt "$(column "$section" "$label" 9 0 | median)" 1 0)" \
                "| $(fmt "$(column "$section" "$label" 10 0 | median)" 1 0)" \
                "| $(fmt "$(column "$section" "$label" 11 0 | median)" 1 1) |"
        else
            echo "| $cell | $wall | $cpu | $rss | $size | $valid |"
        fi
    done < <(awk -F'\t' -v s="$section" '$1 == s && !seen[$2]++ { print $2 }' "$RESULTS")
}

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
dbkeep_version="not measured"
if [[ -n "$DBKEEP" ]]; then
    dbkeep_version=$("$DBKEEP" --version 2>/dev/null || echo "dbkeep")
    if [[ -z "${DBKEEP_BIN:-}" ]]; then
        commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || true)
        [[ -z "$commit" ]] || dbkeep_version="$dbkeep_version (commit $commit)"
    fi
fi

cat <<EOF
### Machine

- Date: $(date -u +%Y-%m-%d)
- CPU: ${cpu_model:-unknown}, $(nproc) cores; RAM: $mem_gib GiB
- OS: $(# shellcheck disable=SC1091
    . /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)
- Temporary files on: $(df -T "$WORK" | awk 'NR == 2 { print $2 }')
- Versions: $dbkeep_version; $(pg_dump --version); PostgreSQL server $PG_SERVER_VERSION; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(gzip --version | head -n 1); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -n 1); python3 sqlite3 module on SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')
- Settings: ROUNDS=$ROUNDS (medians shown), TIMEOUT=$TIMEOUT s, WRITER_INTERVAL_MS=$WRITER_INTERVAL_MS

### PostgreSQL: pgbench scale $SCALE, database size $(fmt "$PG_DB_SIZE" 1000000 0) MB

$(table pg 0)

### SQLite, idle: $(fmt "$SQLITE_SIZE" 1000000 0) MB, $ITEMS rows, WAL mode

$(table sqlite_idle 0)

### SQLite, with a writer committing every $WRITER_INTERVAL_MS ms

$(table sqlite_writer 1)
EOF
log "done"
