#!/usr/bin/env bash
# Off-site upload: a 1 GB backup to an S3-compatible server on loopback (moto), by
# `dbkeep offsite sync` against boto3's `upload_file` of the same file, in one run.
# See bench/README.md.
#
# Usage: bench/offsite.sh > results.md      (progress goes to stderr)
#
# Environment (defaults in brackets):
#   SIZE_MB      size of the backup, in MiB [1024]
#   ROUNDS       rounds per measurement; medians are reported [3]
#   VENV         a virtualenv with moto[server] and boto3 [target/test-venv, as scripts/test.sh makes it]
#   DBKEEP_BIN   this dbkeep binary instead of a release build
#   BENCH_TMPDIR where the files go [$TMPDIR or /tmp]

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
VENV=${VENV:-$ROOT/target/test-venv}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
[[ -x "$VENV/bin/moto_server" ]] || die "no moto_server in $VENV (run scripts/test.sh once, or pip install 'moto[server]')"
"$VENV/bin/python" -c 'import boto3' 2>/dev/null || die "no boto3 in $VENV"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"
for tool in sqlite3 curl bc python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/dbkeep-offsite-bench.XXXXXX")
MOTO_PID=
cleanup() {
    [[ -n "$MOTO_PID" ]] && kill "$MOTO_PID" 2>/dev/null
    rm -rf -- "$WORK"
}
trap cleanup EXIT

DBKEEP=$(dbkeep_binary "$ROOT")

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1

log "creating a SQLite database of $SIZE_MB MiB of incompressible rows"
sqlite3 "$WORK/big.db" "CREATE TABLE t (b BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $((SIZE_MB * 10)))
INSERT INTO t SELECT randomblob(104857) FROM n;"

write_config() {
    cat >"$WORK/dbkeep.toml" <<EOF
backup_dir = "backups"
[[offsite]]
name = "s3"
url = "s3://$1/dbkeep"
endpoint = "http://127.0.0.1:$PORT"
region = "us-east-1"
[[databases]]
name = "big"
url = "sqlite:big.db"
EOF
}

# The backup is taken once (its upload fails: the bucket does not exist yet); each round then
# uploads it into a fresh bucket.
write_config none
"$DBKEEP" --config "$WORK/dbkeep.toml" backup >/dev/null || true
FILE=$(ls "$WORK"/backups/big/*.db)
SIZE=$(stat -c %s "$FILE")


for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    "$VENV/bin/python" -c "import boto3; c = boto3.client('s3', endpoint_url='http://127.0.0.1:$PORT'); c.create_bucket(Bucket='boto$round'); c.create_bucket(Bucket='dbkeep$round')"
    measure "boto3 upload_file" "$VENV/bin/python" -c "
import boto3, sys
boto3.client('s3', endpoint_url='http://127.0.0.1:$PORT').upload_file(sys.argv[1], 'boto$round', 'big.db')
" "$FILE"
    write_config "dbkeep$round"
    # A new bucket: nothing is there yet, whatever the catalog says of earlier rounds.
    sqlite3 "$WORK/dbkeep.sqlite3" "DELETE FROM copies"
    measure "dbkeep offsite sync" "$DBKEEP" --config "$WORK/dbkeep.toml" offsite sync
    "$VENV/bin/python" -c "import boto3; c = boto3.client('s3', endpoint_url='http://127.0.0.1:$PORT'); [c.delete_object(Bucket=b, Key=k) for b, k in (('boto$round', 'big.db'),)]"
done

row() {
    local label=$1 wall rss
    read -r wall rss < <(medians "$label")
    printf '| %s | %.2f s | %.0f MB/s | %d MiB |\n' "$label" "$wall" "$(echo "$SIZE / 1000000 / $wall" | bc -l)" "$((${rss%.*} / 1024))"
}
cat <<EOF
### Off-site upload

- Date: $(date -u +%Y-%m-%d); CPU: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores
- $("$DBKEEP" --version); moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'); boto3 $("$VENV/bin/python" -c 'import boto3; print(boto3.__version__)'); rounds: $ROUNDS (medians)
- One file of $((SIZE / 1000000)) MB to moto's S3 server on loopback

| command | wall | throughput | peak RSS |
|---|---|---|---|
$(row "boto3 upload_file")
$(row "dbkeep offsite sync")
EOF
log "done"
