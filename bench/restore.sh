#!/usr/bin/env bash
# gzip backups, restore and verify, against the standard tools, in one run. See bench/README.md.
#
# Usage: bench/restore.sh > results.md      (progress goes to stderr)
#
# PostgreSQL: a database that is not all pgbench (whose tables compress too well to tell
# anything): pgbench tables plus a text-heavy `posts` table of prose-like rows (30 to 90 words,
# ids, tags, timestamps). It is backed up once with dbkeep (gzip); then the same file is
# restored into a fresh database by `gunzip -c FILE | psql -1` and by `dbkeep restore`, and into
# a database it creates by `dbkeep restore --create --jobs 2` (parallel), beside `pg_restore -j2`
# of a custom-format dump of the same database.
# SQLite: a database of about SQLITE_MB MiB is backed up once; then `dbkeep verify --level
# restore` is measured against `cp` + `PRAGMA integrity_check` on the copy.
#
# Environment (defaults in brackets):
#   DBKEEP_BENCH_PG_URL  server, without database [postgres://postgres@127.0.0.1:5432]
#   SCALE                pgbench scale beside the posts table [100]
#   POSTS                rows of the posts table [1000000]
#   SQLITE_MB            size of the SQLite database, in MiB [1024]
#   ROUNDS               rounds per measurement; medians are reported [3]
#   FRESH=1              rebuild the PostgreSQL database even if it exists [0]
#   DBKEEP_BIN           this dbkeep binary instead of a release build
#   BENCH_TMPDIR         where the files go [$TMPDIR or /tmp]

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${DBKEEP_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
BASE=${BASE%/}
SCALE=${SCALE:-100}
POSTS=${POSTS:-1000000}
SQLITE_MB=${SQLITE_MB:-1024}
ROUNDS=${ROUNDS:-3}
FRESH=${FRESH:-0}
SRC=dbkeep_bench_restore
DST=dbkeep_bench_restore_target

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
for tool in pg_dump pg_restore psql pgbench gunzip zstd age-keygen sqlite3 python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/dbkeep-restore-bench.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

DBKEEP=$(dbkeep_binary "$ROOT")

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# --- The PostgreSQL database ------------------------------------------------
have=$(q -d "$BASE/postgres" -c "SELECT count(*) FROM pg_database WHERE datname = '$SRC'")
if [[ "$have" == 0 || "$FRESH" == 1 ]]; then
    log "creating $SRC: pgbench scale $SCALE and $POSTS posts"
    q -d "$BASE/postgres" -c "DROP DATABASE IF EXISTS $SRC" -c "CREATE DATABASE $SRC"
    pgbench -q -i -s "$SCALE" "$BASE/$SRC" >/dev/null 2>&1
    create_posts "$BASE/$SRC" "$POSTS"
    q -d "$BASE/$SRC" -c "VACUUM ANALYZE"
fi
PG_SIZE=$(q -d "$BASE/$SRC" -c "SELECT pg_database_size('$SRC')")

age-keygen -o "$WORK/age-key.txt" 2>/dev/null
AGE_PUBLIC=$(age-keygen -y "$WORK/age-key.txt")
cat >"$WORK/dbkeep.toml" <<EOF
backup_dir = "backups"
[[databases]]
name = "pg"
url = "$BASE/$SRC"
[[databases]]
name = "pgzstd"
url = "$BASE/$SRC"
compression = "zstd"
[[databases]]
name = "pgage"
url = "$BASE/$SRC"
compression = "zstd"
age_recipients = ["$AGE_PUBLIC"]
[[databases]]
name = "lite"
url = "sqlite:lite.db"
EOF
run() { "$DBKEEP" --config "$WORK/dbkeep.toml" "$@"; }

log "backing up $SRC once with dbkeep (gzip)"
run backup -d pg >/dev/null
PG_ID=$(run list --json -d pg | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
PG_FILE=$(run list --json -d pg | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["path"])')
PLAIN=$(gunzip -c "$PG_FILE" | wc -c)


# --- Backing it up with gzip, against pg_dump | gzip -6 ----------------------------------
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: gzip backups"
    measure "pg_dump > /dev/null" pg_dump -f /dev/null "$BASE/$SRC"
    measure "pg_dump | gzip -6" bash -c 'set -o pipefail; pg_dump "$1" | gzip -6 > "$2"' _ "$BASE/$SRC" "$WORK/classic.sql.gz"
    GZIP_SIZE=$(stat -c %s "$WORK/classic.sql.gz")
    rm -f "$WORK/classic.sql.gz"
    measure "dbkeep backup (gzip)" "$DBKEEP" --config "$WORK/dbkeep.toml" backup -d pg --no-cleanup
    measure "pg_dump | zstd -3" bash -c 'set -o pipefail; pg_dump "$1" | zstd -q -3 > "$2"' _ "$BASE/$SRC" "$WORK/classic.sql.zst"
    rm -f "$WORK/classic.sql.zst"
    measure "dbkeep backup (zstd)" "$DBKEEP" --config "$WORK/dbkeep.toml" backup -d pgzstd --no-cleanup
    measure "dbkeep backup (zstd + age)" "$DBKEEP" --config "$WORK/dbkeep.toml" backup -d pgage --no-cleanup
done

# --- Restoring it -------------------------------------------------------------------------
# Each restore starts alike: no target, and no checkpoint owed from the one before.
no_target() { q -d "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)" -c "CHECKPOINT"; }
fresh_target() { no_target && q -d "$BASE/postgres" -c "CREATE DATABASE $DST"; }

# The reference for a parallel load: pg_restore -j2 of a custom-format dump (made once, untimed).
log "dumping $SRC once in pg_dump's custom format, for pg_restore -j2"
pg_dump -Fc -Z 6 -f "$WORK/custom.dump" "$BASE/$SRC"

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: PostgreSQL restores"
    fresh_target
    measure "gunzip -c FILE | psql -1" bash -c \
        'set -o pipefail; gunzip -c "$1" | psql -X -q -1 -v ON_ERROR_STOP=1 -d "$2"' _ "$PG_FILE" "$BASE/$DST"
    fresh_target
    measure "dbkeep restore" "$DBKEEP" --config "$WORK/dbkeep.toml" restore "$PG_ID" --to "$BASE/$DST"
    fresh_target
    measure "pg_restore -j2 (custom format)" pg_restore -j2 --exit-on-error -d "$BASE/$DST" "$WORK/custom.dump"
    no_target
    measure "dbkeep restore --create --jobs 2" "$DBKEEP" --config "$WORK/dbkeep.toml" restore "$PG_ID" --to "$BASE/$DST" --create --jobs 2
done
q -d "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)"

# --- SQLite -------------------------------------------------------------------
log "creating a SQLite database of about $SQLITE_MB MiB"
python3 - "$WORK/lite.db" "$SQLITE_MB" <<'PY'
import os, sqlite3, sys
path, mb = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode = WAL")
c.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, data BLOB NOT NULL, label TEXT)")
c.execute("CREATE INDEX big_label ON big (label)")
rows = mb * 1000
c.executemany("INSERT INTO big VALUES (?, ?, ?)", ((i, os.urandom(900), "row %d" % i) for i in range(rows)))
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
SQLITE_SIZE=$(stat -c %s "$WORK/lite.db")
run backup -d lite >/dev/null
LITE_ID=$(run list --json -d lite | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
LITE_FILE=$(run list --json -d lite | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["path"])')
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: SQLite verification"
    measure "cp + PRAGMA integrity_check" bash -c \
        'cp "$1" "$2" && sqlite3 "$2" "PRAGMA integrity_check" | grep -qx ok && rm -f "$2"' _ "$LITE_FILE" "$WORK/copy.db"
    measure "dbkeep verify --level restore" "$DBKEEP" --config "$WORK/dbkeep.toml" verify "$LITE_ID"
done

# --- Report -------------------------------------------------------------------
row() {
    local label=$1 wall rss
    read -r wall rss < <(medians "$label")
    printf '| %s | %.2f s | %d MiB |\n' "$label" "$wall" "$((${rss%.*} / 1024))"
}
cat <<EOF
### Restore and verify

- Date: $(date -u +%Y-%m-%d); CPU: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores
- $("$DBKEEP" --version); $(psql --version); rounds: $ROUNDS (medians)
- PostgreSQL: pgbench scale $SCALE and $POSTS posts, database $((PG_SIZE / 1000000)) MB, dump $((PLAIN / 1000000)) MB plain; gzip: $(stat -c %s "$PG_FILE") bytes by dbkeep, $GZIP_SIZE bytes by gzip -6
- SQLite: $((SQLITE_SIZE / 1000000)) MB

| command | wall | peak RSS |
|---|---|---|
$(row "pg_dump > /dev/null")
$(row "pg_dump | gzip -6")
$(row "dbkeep backup (gzip)")
$(row "pg_dump | zstd -3")
$(row "dbkeep backup (zstd)")
$(row "dbkeep backup (zstd + age)")
$(row "gunzip -c FILE | psql -1")
$(row "dbkeep restore")
$(row "pg_restore -j2 (custom format)")
$(row "dbkeep restore --create --jobs 2")
$(row "cp + PRAGMA integrity_check")
$(row "dbkeep verify --level restore")
EOF
log "done"
