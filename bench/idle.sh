#!/usr/bin/env bash
# Measure an idle `dbkeep serve`: resident memory and CPU time over a quiet stretch, with many
# databases scheduled (none firing during the measurement). See bench/README.md.
#
# Usage: bench/idle.sh > idle-results.md   (progress on stderr)
#
# Environment (defaults in brackets):
#   DATABASES   how many SQLite databases to schedule [50]
#   SECONDS_IDLE  how long to measure [60]
#   DBKEEP_BIN  benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATABASES=${DATABASES:-50}
SECONDS_IDLE=${SECONDS_IDLE:-60}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building dbkeep (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi

work=$(mktemp -d)
pid=
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf -- "$work"
}
trap cleanup EXIT

# Daily and hourly schedules: nothing fires during a one-minute measurement unless it
# happens to straddle the top of an hour, which the script avoids below.
{
    echo 'timezone = "UTC"'
    for i in $(seq 1 "$DATABASES"); do
        sqlite3 "$work/db$i.sqlite3" "CREATE TABLE t(x); INSERT INTO t VALUES ($i);"
        printf '[[databases]]\nname = "db%s"\nurl = "sqlite:db%s.sqlite3"\nschedules = ["0 0 * * *", "0 * * * *"]\n' "$i" "$i"
    done
} >"$work/dbkeep.toml"

minute=$((10#$(date +%M)))
if ((minute >= 58)); then
    log "waiting for the top of the hour to pass, so no hourly schedule fires while measuring"
    sleep $(((60 - minute) * 60 + 5))
fi

"$DBKEEP_BIN" --config "$work/dbkeep.toml" serve 2>"$work/serve.log" &
pid=$!
sleep 3 # start-up: catalog creation, migration, planning
kill -0 "$pid" || { cat "$work/serve.log" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
log "measuring $SECONDS_IDLE s of idle time with $DATABASES databases ($((DATABASES * 2)) schedules)"
sleep "$SECONDS_IDLE"
after=$(ticks)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
fires=$(sqlite3 "$work/dbkeep.sqlite3" "SELECT count(*) FROM fires")

cpu_s=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')
cpu_pct=$(awk -v t=$((after - before)) -v hz="$hz" -v s="$SECONDS_IDLE" 'BEGIN {printf "%.3f", 100 * t / hz / s}')

echo "### Idle \`dbkeep serve\`"
echo
echo "- $(date -u +%Y-%m-%d), $(nproc) cores; dbkeep $("$DBKEEP_BIN" --version | awk '{print $2}')"
echo "- $DATABASES SQLite databases, $((DATABASES * 2)) schedules, measured for $SECONDS_IDLE s after a 3 s start"
echo
echo "| RSS now MiB | Peak RSS MiB | CPU s over ${SECONDS_IDLE} s | CPU % | Threads | Fires during the run |"
echo "|---:|---:|---:|---:|---:|---:|"
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
echo "| $(mib "$rss_kib") | $(mib "$hwm_kib") | $cpu_s | $cpu_pct | $threads | $fires |"
