#!/usr/bin/env bash
# Retention at scale: `dbkeep prune` over 10,000 backups of one database, on a SQLite catalog and
# on a PostgreSQL catalog holding the same rows, against `xargs rm` deleting the same files.
# See bench/README.md ("Retention").
#
# One run seeds 10,000 successful hourly backups (about 417 days) of a SQLite database `app`,
# each with a real 4 KiB file in its folder, under the policy keep_daily 7, keep_weekly 4,
# keep_monthly 12, keep_yearly 3. Then, ROUNDS times per catalog, from the same seeded state:
#   1. `dbkeep prune --dry-run --json`: the whole plan, every backup decided and explained
#      (catalog read, policy, JSON out; no file touched);
#   2. `dbkeep prune --confirm`: the plan, the deletion of the files the policy lets go, and
#      the catalog rows marked pruned in one write;
#   3. `xargs rm` of exactly the files step 2 deleted: the file work alone, without a catalog.
# The catalog's share of a prune is step 2 minus step 3.
#
# Usage: bench/retention.sh > retention-results.md   (progress on stderr)
#
# Needs sqlite3, psql and a PostgreSQL server that lets the user create databases.
#
# Environment (defaults in brackets):
#   PG_URL      server to use, without a database name [postgres://postgres@127.0.0.1:5432]
#   BACKUPS     backups seeded [10000]
#   ROUNDS      measurements of each step per catalog [5]
#   DBKEEP_BIN  benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
BACKUPS=${BACKUPS:-10000}
ROUNDS=${ROUNDS:-5}

for tool in sqlite3 psql /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building a release dbkeep"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin dbkeep
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi
DBKEEP_BIN=$(realpath "$DBKEEP_BIN")

WORK=$(mktemp -d -t dbkeep-bench-retention.XXXXXX)
PG_DB="dbkeep_bench_retention_$$"
cleanup() {
    psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
: >"$WORK/results"

dbkeep() { "$DBKEEP_BIN" --config "$WORK/dbkeep.toml" "$@"; }

sqlite3 "$WORK/app.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
policy='timezone = "UTC"
keep_daily = 7
keep_weekly = 4
keep_monthly = 12
keep_yearly = 3'
write_config() { # CATALOG
    printf '%s\ncatalog = "%s"\n[[databases]]\nname = "app"\nurl = "sqlite:app.db"\n' \
        "$policy" "$1" >"$WORK/dbkeep.toml"
}

# ---------------------------------------------------------------------------
# Seed: one backup an hour, ending an hour ago; files named as dbkeep names them.
# ---------------------------------------------------------------------------
write_config "$WORK/dbkeep.sqlite3"
dbkeep list >/dev/null # creates and migrates the catalog
now=$(date -u +%s)
log "seeding $BACKUPS backups"
sqlite3 "$WORK/dbkeep.sqlite3" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $BACKUPS),
    r AS (SELECT x, $now - ($BACKUPS - x + 1) * 3600 AS t FROM n)
INSERT INTO backups (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                     compression, started_at, finished_at, duration_ms)
SELECT x, 'app', 'sqlite', 'success', 'scheduled',
       'sqlite_backup_' || strftime('%Y%m%d_%H%M%S', t, 'unixepoch') || '.db',
       '$WORK/backups/app/sqlite_backup_' || strftime('%Y%m%d_%H%M%S', t, 'unixepoch') || '.db',
       4096, lower(hex(randomblob(32))), 'none',
       strftime('%Y-%m-%dT%H:%M:%fZ', t, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', t + 2, 'unixepoch'), 2000
FROM r;
COMMIT;
SQL
cp "$WORK/dbkeep.sqlite3" "$WORK/seeded.sqlite3"
sqlite3 "$WORK/seeded.sqlite3" "SELECT file_name FROM backups" >"$WORK/all-files"
[[ $(wc -l <"$WORK/all-files") -eq $BACKUPS ]] || die "seeding failed"

log "copying the history into a PostgreSQL catalog"
psql -q "$PG_URL/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
dbkeep catalog migrate --to "$PG_URL/$PG_DB" >/dev/null

# The files, 4 KiB each, made again before each round.
make_files() {
    rm -rf "$WORK/backups/app"
    mkdir -p "$WORK/backups/app"
    (cd "$WORK/backups/app" && xargs -a "$WORK/all-files" -n 1000 truncate -s 4096)
}

# Back to the seeded state: every row unpruned, no policy recorded, every file there.
reset() { # CATALOG-KIND
    case $1 in
    sqlite) cp "$WORK/seeded.sqlite3" "$WORK/dbkeep.sqlite3" && rm -f "$WORK"/dbkeep.sqlite3-{wal,shm} ;;
    postgres) psql -q "$PG_URL/$PG_DB" -c \
        "UPDATE backups SET pruned_at = NULL; DELETE FROM retention_marks;" >/dev/null ;;
    esac
    make_files
}

for kind in sqlite postgres; do
    case $kind in
    sqlite) write_config "$WORK/dbkeep.sqlite3" ;;
    postgres) write_config "$PG_URL/$PG_DB" ;;
    esac
    log "$kind catalog"
    for ((round = 1; round <= ROUNDS; round++)); do
        reset "$kind"
        measure "$kind plan" "$DBKEEP_BIN" --config "$WORK/dbkeep.toml" prune --dry-run --json
        measure "$kind prune" "$DBKEEP_BIN" --config "$WORK/dbkeep.toml" prune --confirm
        # What the prune deleted, deleted again by rm from a fresh set of files.
        comm -23 <(sort "$WORK/all-files") <(ls "$WORK/backups/app" | sort) >"$WORK/deleted"
        make_files
        measure "$kind rm" bash -c "cd '$WORK/backups/app' && xargs -a '$WORK/deleted' rm --"
    done
    kept=$((BACKUPS - $(wc -l <"$WORK/deleted")))
    log "  $kept of $BACKUPS backups kept"
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "## Retention: \`bench/retention.sh\`"
echo
echo "$(date -u +%Y-%m-%d), $BACKUPS backups of one database, $kept kept; median of $ROUNDS rounds;"
echo "commit $commit, $(nproc) cores ($cpu)."
echo
echo "| catalog | plan (\`prune --dry-run --json\`) | prune (\`prune --confirm\`) | \`xargs rm\` of the same files | catalog's share (prune − rm) | peak RSS of prune |"
echo "|---|---|---|---|---|---|"
for kind in sqlite postgres; do
    read -r plan _ <<<"$(medians "$kind plan")"
    read -r prune rss <<<"$(medians "$kind prune")"
    read -r rm _ <<<"$(medians "$kind rm")"
    share=$(awk -v a="$prune" -v b="$rm" 'BEGIN { printf "%.2f", a - b }')
    echo "| $kind | ${plan} s | ${prune} s | ${rm} s | ${share} s | $((rss / 1024)) MiB |"
done
