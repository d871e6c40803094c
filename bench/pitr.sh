#!/usr/bin/env bash
# Point-in-time recovery against the standard tools, in one run. See bench/README.md.
#
# Usage: bench/pitr.sh > results.md      (progress goes to stderr)
#
# A private cluster (initdb of the installed PostgreSQL, on a free port) holds pgbench tables
# and the text-heavy `posts` table. Measured, ROUNDS times each, medians reported:
# - base backups: `dbkeep backup --server` (zstd) against `pg_basebackup -Ft -z` (gzip) and
#   `pg_basebackup -D - -Ft | zstd -3`;
# - archiving under pgbench for LOAD_SECONDS: `dbkeep wal push` against `cp` and `zstd -3` as
#   archive_command: segments archived per second, the archiver's worst lag (in segments, read
#   each second from pg_stat_archiver), and the CPU each push costs;
# - recovery to a moment near the end of that load: `dbkeep restore --server --at --start`
#   (unpack, replay, promote), beside unpacking the same base with `zstd -d | tar -x` alone.
#
# Environment (defaults in brackets):
#   SCALE          pgbench scale beside the posts table [20]
#   POSTS          rows of the posts table [300000]
#   LOAD_SECONDS   how long pgbench writes while archiving is measured [60]
#   ROUNDS         rounds per measurement; medians are reported [3]
#   DBKEEP_BIN     this dbkeep binary instead of a release build
#   BENCH_TMPDIR   where the files go [$TMPDIR or /tmp]
# PostgreSQL refuses to run as root: as root, the cluster and dbkeep run as `postgres`.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${SCALE:-20}
POSTS=${POSTS:-300000}
LOAD_SECONDS=${LOAD_SECONDS:-60}
ROUNDS=${ROUNDS:-3}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL's server programs (initdb) not found"
export PATH="$PG_BIN:$PATH"
for tool in zstd tar python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"

DBKEEP=$(dbkeep_binary "$ROOT")

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/dbkeep-pitr-bench.XXXXXX")
AS_PG=()
[[ $EUID -eq 0 ]] && AS_PG=(runuser -u postgres --)
as_pg() { (cd / && "${AS_PG[@]}" "$@"); }
cleanup() {
    as_pg pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
    for d in "$WORK"/restored*; do as_pg pg_ctl -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
    rm -rf -- "$WORK"
}
trap cleanup EXIT
[[ $EUID -eq 0 ]] && chown postgres: "$WORK"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="postgres://postgres@127.0.0.1:$PORT"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

cat >"$WORK/dbkeep.toml" <<EOF
backup_dir = "$WORK/backups"
min_free_space = "64MiB"
[[servers]]
name = "pg"
url = "$URL/"
exclude = ["*"]
wal_archive = true
EOF
as_pg mkdir -p "$WORK/cp" "$WORK/zstd"
[[ $EUID -eq 0 ]] && chown postgres: "$WORK/dbkeep.toml"

log "initdb and loading: pgbench scale $SCALE and $POSTS posts"
as_pg initdb -A trust -U postgres -E UTF8 -D "$WORK/data" >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $WORK/cp/%f'
archive_timeout = '60s'
max_wal_size = '1GB'
EOF
as_pg pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
pgbench -q -i -s "$SCALE" -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1
create_posts "$URL/postgres" "$POSTS"
q -d postgres -c "VACUUM ANALYZE"
# A segment's number across log ids (256 segments of 16 MiB in each).
q -d postgres -c "CREATE FUNCTION segno(text) RETURNS bigint IMMUTABLE LANGUAGE sql AS
  \$\$ SELECT ('x' || substr(\$1, 9, 8))::bit(32)::int::bigint * 256 + ('x' || substr(\$1, 17, 8))::bit(32)::int \$\$"
DB_SIZE=$(q -d postgres -c "SELECT sum(pg_database_size(datname)) FROM pg_database")

# archive_command ARCHIVER: switch archiving to `cp`, `zstd` or `dbkeep`, each push timed.
archive_with() {
    local command
    case $1 in
    cp) command="/usr/bin/time -a -o $WORK/cp.times -f '%e %U %S' cp %p $WORK/cp/%f" ;;
    zstd) command="/usr/bin/time -a -o $WORK/zstd.times -f '%e %U %S' zstd -q -3 %p -o $WORK/zstd/%f.zst" ;;
    dbkeep) command="/usr/bin/time -a -o $WORK/dbkeep.times -f '%e %U %S' $DBKEEP --config $WORK/dbkeep.toml wal push %p" ;;
    esac
    q -d postgres -c "ALTER SYSTEM SET archive_command = '${command//\'/\'\'}'" -c "SELECT pg_reload_conf()" >/dev/null
    q -d postgres -c "SELECT pg_walfile_name(pg_switch_wal())" >/dev/null
    sleep 2
}

# The first base backup is dbkeep's: the archive must hold the WAL from its start.
archive_with dbkeep
log "base backups"
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: base backups"
    measure "pg_basebackup -Ft -z" "${AS_PG[@]}" pg_basebackup -h 127.0.0.1 -p "$PORT" -U postgres -D "$WORK/bb-gzip" -Ft -z -X none -c fast
    GZIP_SIZE=$(du -cb "$WORK"/bb-gzip/*.tar.gz | tail -n 1 | cut -f1)
    rm -rf "$WORK/bb-gzip"
    measure "pg_basebackup -D - -Ft | zstd -3" "${AS_PG[@]}" bash -c \
        'set -o pipefail; pg_basebackup -h 127.0.0.1 -p "$1" -U postgres -D - -Ft -X none -c fast | zstd -q -3 > "$2"' _ "$PORT" "$WORK/bb.tar.zst"
    ZSTD_SIZE=$(stat -c %s "$WORK/bb.tar.zst")
    measure "dbkeep backup --server (zstd)" "${AS_PG[@]}" "$DBKEEP" --config "$WORK/dbkeep.toml" backup --server pg --no-cleanup
done
BASE_FILE=$(as_pg "$DBKEEP" --config "$WORK/dbkeep.toml" list --json -d pg | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["path"])')
BASE_SIZE=$(stat -c %s "$BASE_FILE")

# Archiving under load: the archiver's worst lag, in segments, sampled each second.
load() { # archiver
    local archiver=$1 before after worst=0 lag t0
    archive_with "$archiver"
    # Every load starts after a checkpoint: each writes the same full-page images.
    q -d postgres -c "CHECKPOINT"
    as_pg bash -c ': >"$1"' _ "$WORK/$archiver.times"
    before=$(q -d postgres -c "SELECT archived_count FROM pg_stat_archiver")
    pgbench -T "$LOAD_SECONDS" -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1 &
    local bench=$!
    t0=$(date +%s.%N)
    while kill -0 "$bench" 2>/dev/null; do
        lag=$(q -d postgres -c "SELECT segno(pg_walfile_name(pg_current_wal_lsn())) - coalesce(segno(last_archived_wal), 0) FROM pg_stat_archiver")
        ((lag > worst)) && worst=$lag
        sleep 1
    done
    wait "$bench"
    after=$(q -d postgres -c "SELECT archived_count FROM pg_stat_archiver")
    local seconds
    seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    awk -v n=$((after - before)) -v s="$seconds" -v w="$worst" -v l="$archiver" '
        { wall += $1; cpu += $2 + $3; pushes++ }
        END { printf "%s\t%d\t%.2f\t%d\t%.1f\t%.1f\n", l, n, n / s, w - 1 < 0 ? 0 : w - 1, pushes ? 1000 * wall / pushes : 0, pushes ? 1000 * cpu / pushes : 0 }' \
        "$WORK/$archiver.times" >>"$WORK/archiving"
    log "  $archiver: $((after - before)) segments in ${seconds%.*} s, worst lag $worst"
}
: >"$WORK/archiving"
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: archiving under pgbench for $LOAD_SECONDS s"
    load cp
    load zstd
    load dbkeep
done

# Recovery to a moment near the end: a base backup under dbkeep's archiving, a short load
# (the archive then holds every segment since that base), a marked moment.
archive_with dbkeep
as_pg "$DBKEEP" --config "$WORK/dbkeep.toml" backup --server pg --no-cleanup >/dev/null
BASE_FILE=$(as_pg "$DBKEEP" --config "$WORK/dbkeep.toml" list --json -d pg | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["path"])')
pgbench -T "$((LOAD_SECONDS / 3))" -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1
q -d postgres -c "CREATE TABLE marks (n int)" -c "INSERT INTO marks VALUES (1)"
sleep 1.1
TARGET=$(q -d postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
sleep 1.1
q -d postgres -c "INSERT INTO marks VALUES (2)" -c "SELECT pg_switch_wal()" >/dev/null
sleep 3
REPLAY=$({ as_pg "$DBKEEP" --config "$WORK/dbkeep.toml" status --json || true; } |
    python3 -c 'import json, sys; d = [x for x in json.load(sys.stdin) if x["name"] == "pg"][0]; print(d["pitr"]["recoverable_to"])')
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: recovery to $TARGET"
    as_pg mkdir -p "$WORK/unpacked"
    measure "zstd -d | tar -x (the base alone)" "${AS_PG[@]}" bash -c 'zstd -q -d -c "$1" | tar -x -C "$2"' _ "$BASE_FILE" "$WORK/unpacked"
    rm -rf "$WORK/unpacked"
    RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    measure "dbkeep restore --server --at --start" "${AS_PG[@]}" "$DBKEEP" --config "$WORK/dbkeep.toml" restore --server pg --at "$TARGET" --to-dir "$WORK/restored$round" --start --port "$RPORT"
    got=$(psql -X -At -h 127.0.0.1 -p "$RPORT" -U postgres -d postgres -c "SELECT string_agg(n::text, ',') FROM marks")
    [[ "$got" == 1 ]] || die "recovered to $TARGET, found marks '$got'"
    as_pg pg_ctl -D "$WORK/restored$round" -m immediate stop >/dev/null
    rm -rf "$WORK/restored$round"
done
WAL_BYTES=$(du -sb "$WORK/backups/pg/wal" | cut -f1)
WAL_FILES=$(find "$WORK/backups/pg/wal" -type f | wc -l)

# --- Report -------------------------------------------------------------------
row() {
    local label=$1 wall rss
    read -r wall rss < <(medians "$label")
    printf '| %s | %.2f s | %.2f s | %d MiB |\n' "${label//|/\\|}" "$wall" "$(cpu_median "$label")" "$((${rss%.*} / 1024))"
}
arch() {
    local l=$1 col=$2
    awk -F'\t' -v l="$l" -v c="$col" '$1 == l { print $c }' "$WORK/archiving" | median
}
cat <<EOF
### Point-in-time recovery

- Date: $(date -u +%Y-%m-%d); CPU: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores
- $("$DBKEEP" --version); $(postgres --version); rounds: $ROUNDS (medians)
- Cluster: pgbench scale $SCALE and $POSTS posts, $((DB_SIZE / 1000000)) MB in all databases

Base backups (wall, CPU of the command and its children, peak RSS):

| Command | Wall | CPU | Peak RSS |
|---|---|---|---|
$(row "pg_basebackup -Ft -z")
$(row "pg_basebackup -D - -Ft | zstd -3")
$(row "dbkeep backup --server (zstd)")

Sizes: pg_basebackup -z $((GZIP_SIZE / 1000000)) MB, | zstd -3 $((ZSTD_SIZE / 1000000)) MB, dbkeep $((BASE_SIZE / 1000000)) MB.

Archiving under \`pgbench -c 2 -T $LOAD_SECONDS\` (archive_command timed with /usr/bin/time):

| archive_command | Segments | Segments/s | Worst lag (segments waiting) | Wall per push | CPU per push | Capacity (1 / wall) |
|---|---|---|---|---|---|---|
$(for a in cp zstd dbkeep; do
    case $a in
    cp) name='`cp %p DIR/%f`' ;;
    zstd) name='`zstd -3 %p -o DIR/%f.zst`' ;;
    dbkeep) name='`dbkeep wal push %p`' ;;
    esac
    wall=$(arch $a 5)
    printf '| %s | %s | %s | %s | %s ms | %s ms | %s |\n' "$name" "$(arch $a 2)" "$(arch $a 3)" "$(arch $a 4)" "$wall" "$(arch $a 6)" \
        "$(awk -v w="$wall" 'BEGIN { if (w > 0) printf "%.0f segments/s", 1000 / w; else print "(under 10 ms a push)" }')"
done)

/usr/bin/time counts in steps of 10 ms. The load, not the archiver, sets how many segments
there are: the capacity column is how many one archiver would push a second at that cost.

The archive then held $WAL_FILES files, $((WAL_BYTES / 1000000)) MB (recoverable to $REPLAY).

Recovery to a moment near the end of the archive (the CPU column is dbkeep's, and tar's;
PostgreSQL's replay runs in the server it starts):

| Command | Wall | CPU | Peak RSS |
|---|---|---|---|
$(row "zstd -d | tar -x (the base alone)")
$(row "dbkeep restore --server --at --start")
EOF
