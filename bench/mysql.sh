#!/usr/bin/env bash
# Measured pipelines get their arguments as "$1", "$2" of a single-quoted bash -c.
# shellcheck disable=SC2016

# MySQL/MariaDB: dbkeep's backups and restore against mariadb-dump | zstd, mariadb-dump | gzip
# and zstd -dc | mariadb, in one run, on one database. See bench/README.md.
#
# Usage: bench/mysql.sh > results.md      (progress goes to stderr)
#
# The database (`dbkeep_bench_mysql`, made fresh on the server by INSERT … SELECT from the
# Sequence engine's seq_1_to_N tables, so in seconds): a text-heavy `articles` table (prose-like
# bodies of 60 to 260 words drawn from a vocabulary of a few hundred words, common ones more
# often, with punctuation, apostrophes and paragraph breaks) and `comments` (5 to 45 words),
# beside ordinary `users` (a BLOB avatar), `orders` (ints, dates, decimals), indexes, a view, a
# trigger and a function: a plain dump of about 370 MB.
#
# Measured, ROUNDS times each, the standard tool and dbkeep in turns (medians and best reported):
#   backups   mariadb-dump > /dev/null (the floor), mariadb-dump | zstd -3, dbkeep (zstd),
#             mariadb-dump | gzip -6, dbkeep (gzip)
#   restores  of one zstd backup by dbkeep, into a new database:
#             CREATE DATABASE + zstd -dc FILE | mariadb, and dbkeep restore ID --to URL --create
#
# Environment (defaults in brackets):
#   MYSQL_HOST, MYSQL_PORT, MYSQL_USER  the server [127.0.0.1, 3306, root; no password]
#   ARTICLES, COMMENTS, USERS, ORDERS   rows of each table [200000, 600000, 20000, 500000]
#   ROUNDS        rounds per measurement; medians (and the best) are reported [5]
#   REUSE=1       use dbkeep_bench_mysql if it is already there, and keep it at the end [0]
#   DBKEEP_BIN    this dbkeep binary instead of a release build
#   BENCH_TMPDIR  where the backups go; needs about 1 GB [$TMPDIR or /tmp]

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOST=${MYSQL_HOST:-127.0.0.1}
PORT=${MYSQL_PORT:-3306}
USER_=${MYSQL_USER:-root}
ARTICLES=${ARTICLES:-200000}
COMMENTS=${COMMENTS:-600000}
USERS=${USERS:-20000}
ORDERS=${ORDERS:-500000}
ROUNDS=${ROUNDS:-5}
REUSE=${REUSE:-0}
SRC=dbkeep_bench_mysql
DST=dbkeep_bench_mysql_restore
URL_BASE="mysql://$USER_@$HOST:$PORT"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
for tool in mariadb mariadb-dump zstd gzip python3; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install mariadb-client zstd gzip python3)"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian: apt-get install time)"

# The client and the dump tool, on the server under test.
CONN=(--host="$HOST" --port="$PORT" --user="$USER_")
my() { mariadb "${CONN[@]}" --default-character-set=utf8mb4 --batch --skip-column-names "$@"; }
my -e 'SELECT 1' >/dev/null || die "cannot connect to MariaDB at $HOST:$PORT as $USER_"
# The usual cron line's options. dbkeep runs mariadb-dump with these, plus
# --default-character-set=utf8mb4 and --no-tablespaces.
DUMP_OPTS=(--single-transaction --quick --routines --triggers --events --hex-blob)

# --- Workspace and cleanup ----------------------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/dbkeep-mysql-bench.XXXXXX")
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local status=$?
    my -e "DROP DATABASE IF EXISTS $DST" 2>/dev/null || true
    [[ "$REUSE" == 1 ]] || my -e "DROP DATABASE IF EXISTS $SRC" 2>/dev/null || true
    rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${DBKEEP_BIN:-}" ]]; then
    DBKEEP=$DBKEEP_BIN
else
    log "building dbkeep (release)"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    DBKEEP="${CARGO_TARGET_DIR:-$ROOT/target}/release/dbkeep"
fi
[[ -x "$DBKEEP" ]] || die "no dbkeep binary at $DBKEEP"

# The server's process, when it runs on this machine: its CPU time is read around each command
# (the server does much of the work of a dump and nearly all of a load).
SERVER_PID=$(pidof -s mariadbd mysqld 2>/dev/null || true)
[[ "$HOST" == 127.0.0.1 || "$HOST" == localhost || "$HOST" == ::1 ]] || SERVER_PID=
TICKS=$(getconf CLK_TCK)
server_ticks() {
    if [[ -n "$SERVER_PID" && -r /proc/$SERVER_PID/stat ]]; then
        awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"
    else
        echo 0
    fi
}

# timed LABEL CMD... : wall seconds, CPU seconds (user + system of CMD and every process it
# waited for; not the server's), peak RSS (KiB, of the largest single process, from getrusage)
# and the server's CPU seconds meanwhile, with the round, appended to $WORK/results.
timed() {
    local label=$1 wall user sys rss cpu before server
    shift
    before=$(server_ticks)
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" </dev/null >/dev/null 2>"$WORK/err" || {
        log "$label failed: $*"
        tail -n 20 "$WORK/err" >&2
        die "$label failed"
    }
    server=$(awk -v a="$before" -v b="$(server_ticks)" -v t="$TICKS" 'BEGIN { printf "%.2f", (b - a) / t }')
    read -r wall user sys rss < <(tail -n 1 "$WORK/time")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$cpu" "$rss" "$server" "$round" >>"$WORK/results"
    log "  $label: $wall s wall, $cpu s CPU (server $server s), $((rss / 1024)) MiB"
}
# The median of LABEL's column COL (2 wall, 3 CPU, 4 RSS, 5 server CPU) in $WORK/results.
med() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l { print $c }' "$WORK/results" | median; }
round=0
# The least of LABEL's wall times.
best() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$WORK/results" | sort -n | head -n 1; }
# The median over the rounds of LABEL's wall time over REFERENCE's in the same round: the two
# ran next to each other, so this cancels the machine's drift between rounds.
paired() {
    awk -F'\t' -v l="$1" -v r="$2" '$1 == l { a[$6] = $2 } $1 == r { b[$6] = $2 }
        END { for (k in a) if (k in b) print a[k] / b[k] }' "$WORK/results" | median
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- The database ---------------------------------------------------------------------------
# Words for the prose: common English words first (drawn more often: the index is
# POW(RAND(), 2) of the list), then rarer ones. Apostrophes and paragraph breaks give the dump
# tool's escaping and dbkeep's row counter something to do.
COMMON="the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part over new sound take only little work know place year live me back give most very after thing our just name good sentence man think say great where help through much before line right too mean old any same tell boy follow came want show also around form three small set put end does another well large must big even such because turn here why ask went men read need land different home us move try kind hand picture again change off play spell air away animal house point page letter mother answer found study still learn should world don't it's isn't we'll"
RARE="database server backup restore schedule garden kitchen window mountain river village market winter summer morning evening journey library theatre concert festival harbour island forest meadow valley bridge castle engine signal network version release feature problem solution question account payment invoice customer supplier product warehouse delivery shipment contract meeting project budget quarter report analysis forecast strategy campaign audience reader writer editor article chapter story history science physics chemistry biology medicine doctor patient hospital school teacher student lesson exam holiday weather storm sunshine cloud rainfall temperature climate energy battery charger vehicle bicycle railway station airport passenger ticket luggage hotel breakfast dinner coffee bread cheese butter pepper tomato potato orange lemon apple cherry strawberry chocolate recipe flavour texture colour shadow silence whisper thunder lightning memory promise reason moment purpose freedom justice courage patience kindness honest gentle brave clever quiet careful curious eager famous fragile generous hungry lonely modern narrow obvious polite rapid simple strange tender useful violent wealthy yellow purple silver golden wooden plastic digital ancient distant private public central eastern western northern southern quickly slowly rarely often always never perhaps indeed however although therefore meanwhile otherwise suddenly finally usually nearly America London Paris Berlin Tokyo O'Brien"
sql_list() { tr ' ' '\n' | awk 'NF' | sed "s/'/''/g; s/.*/'&'/" | paste -sd,; }
NWORDS=$(printf '%s %s\n' "$COMMON" "$RARE" | wc -w)
WORD="ELT(1 + FLOOR(POW(RAND(), 2) * $NWORDS), $(printf '%s %s\n' "$COMMON" "$RARE" | sql_list))"
# After a word: mostly a space, sometimes a full stop, a comma or a paragraph break.
PUNCT="ELT(1 + FLOOR(RAND() * 40), '.', '.', '.', ',', ',', CONCAT('.', CHAR(10), CHAR(10)), '?', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '')"
# prose MIN SPAN KEY: MIN + KEY % SPAN words (KEY an expression of the outer row), as a
# correlated subquery over the Sequence engine.
prose() { echo "(SELECT GROUP_CONCAT(CONCAT($WORD, $PUNCT) SEPARATOR ' ') FROM seq_1_to_400 w WHERE w.seq <= $1 + ($3) % $2)"; }

have_src() {
    [[ "$(my -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$SRC'")" -ge 4 ]]
}

if [[ "$REUSE" == 1 ]] && have_src; then
    log "reusing $SRC (REUSE=1)"
else
    log "creating $SRC: $USERS users, $ARTICLES articles, $COMMENTS comments, $ORDERS orders"
    my -e "DROP DATABASE IF EXISTS $SRC; CREATE DATABASE $SRC CHARACTER SET utf8mb4"
    my --database="$SRC" >/dev/null <<SQL
SET SESSION group_concat_max_len = 1048576;
SET SESSION max_recursive_iterations = 10000000;

CREATE TABLE users (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    email VARCHAR(190) NOT NULL,
    display_name VARCHAR(100) NOT NULL,
    country CHAR(2) NOT NULL,
    birth_date DATE,
    created_at DATETIME NOT NULL,
    balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
    is_active TINYINT(1) NOT NULL DEFAULT 1,
    avatar BLOB,
    UNIQUE KEY users_email (email)
) ENGINE = InnoDB;

CREATE TABLE articles (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    author_id INT UNSIGNED NOT NULL,
    title VARCHAR(255) NOT NULL,
    slug VARCHAR(255) NOT NULL,
    status ENUM('draft', 'published', 'archived') NOT NULL DEFAULT 'draft',
    published_at DATETIME,
    views INT UNSIGNED NOT NULL DEFAULT 0,
    body MEDIUMTEXT NOT NULL,
    KEY articles_author (author_id),
    KEY articles_published (status, published_at)
) ENGINE = InnoDB;

CREATE TABLE comments (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    article_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    created_at DATETIME NOT NULL,
    score SMALLINT NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    KEY comments_article (article_id, created_at)
) ENGINE = InnoDB;

CREATE TABLE orders (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    user_id INT UNSIGNED NOT NULL,
    ordered_on DATE NOT NULL,
    amount DECIMAL(10, 2) NOT NULL,
    quantity SMALLINT UNSIGNED NOT NULL,
    status VARCHAR(16) NOT NULL,
    note VARCHAR(64),
    updated_at TIMESTAMP NULL,
    KEY orders_user (user_id, ordered_on)
) ENGINE = InnoDB;

INSERT INTO users
SELECT s.seq,
       CONCAT('user', s.seq, '@', ELT(1 + s.seq % 5, 'example.com', 'mail.example.org', 'post.test', 'inbox.example.net', 'corp.example')),
       CONCAT(ELT(1 + FLOOR(RAND() * 12), 'Anna', 'Ben', 'Chloé', 'David', 'Emma', 'Felix', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kai', 'Lena'), ' ',
              ELT(1 + FLOOR(RAND() * 12), 'Smith', 'Müller', 'García', 'Rossi', 'Dubois', 'Novak', 'Tanaka', 'Silva', 'Jensen', 'Kowalski', 'O''Neill', 'Brown')),
       ELT(1 + s.seq % 10, 'US', 'DE', 'FR', 'GB', 'ES', 'IT', 'PL', 'JP', 'BR', 'SE'),
       IF(s.seq % 7 = 0, NULL, DATE '1950-01-01' + INTERVAL FLOOR(RAND() * 20000) DAY),
       TIMESTAMP '2015-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 300000000) SECOND,
       ROUND(RAND() * 10000, 2),
       s.seq % 10 <> 0,
       IF(s.seq % 3 = 0, NULL, RANDOM_BYTES(256 + s.seq % 769))
FROM seq_1_to_$USERS s;

INSERT INTO articles
SELECT s.seq,
       1 + (s.seq * 7919) % $USERS,
       $(prose 4 7 's.seq'),
       CONCAT($WORD, '-', $WORD, '-', s.seq),
       ELT(1 + s.seq % 10, 'draft', 'published', 'published', 'published', 'published', 'published', 'published', 'published', 'archived', 'archived'),
       IF(s.seq % 10 = 0, NULL, TIMESTAMP '2016-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 300000000) SECOND),
       FLOOR(POW(RAND(), 4) * 1000000),
       $(prose 60 201 's.seq * 7919')
FROM seq_1_to_$ARTICLES s;

INSERT INTO comments
SELECT s.seq,
       1 + (s.seq * 104729) % $ARTICLES,
       1 + (s.seq * 15485863) % $USERS,
       TIMESTAMP '2016-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 300000000) SECOND,
       FLOOR(RAND() * 200) - 50,
       $(prose 5 41 's.seq * 31')
FROM seq_1_to_$COMMENTS s;

INSERT INTO orders
SELECT s.seq,
       1 + FLOOR(RAND() * $USERS),
       DATE '2018-01-01' + INTERVAL FLOOR(RAND() * 2900) DAY,
       ROUND(1 + POW(RAND(), 3) * 2000, 2),
       1 + FLOOR(POW(RAND(), 3) * 20),
       ELT(1 + FLOOR(RAND() * 6), 'new', 'paid', 'shipped', 'shipped', 'delivered', 'cancelled'),
       IF(RAND() < 0.8, NULL, CONCAT('please ', $WORD, ' ', $WORD, ' before ', $WORD)),
       NULL
FROM seq_1_to_$ORDERS s;

CREATE VIEW published_articles AS
    SELECT id, author_id, title, published_at FROM articles WHERE status = 'published';

CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW SET NEW.updated_at = CURRENT_TIMESTAMP;

CREATE FUNCTION order_total(u INT UNSIGNED) RETURNS DECIMAL(14, 2) READS SQL DATA
    RETURN (SELECT COALESCE(SUM(amount * quantity), 0) FROM orders WHERE user_id = u);

ANALYZE TABLE users, articles, comments, orders;
SQL
fi

# What the database holds: rows and InnoDB size (data + indexes) of each table.
TABLES=$(my -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$SRC' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
declare -A ROWS_OF SIZE_OF
for t in $TABLES; do
    ROWS_OF[$t]=$(my --database="$SRC" -e "SELECT COUNT(*) FROM \`$t\`")
    SIZE_OF[$t]=$(my -e "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$SRC' AND TABLE_NAME = '$t'")
done
SERVER_VERSION=$(my -e 'SELECT VERSION()')

# --- dbkeep's configuration ----------------------------------------------------------------
# One entry per compressor, both the same database.
mkdir -p "$WORK/backups"
cat >"$WORK/dbkeep.toml" <<EOF
backup_dir = "$WORK/backups"
catalog = "$WORK/catalog.sqlite3"
retention_days = 0
keep_last = 100

[[databases]]
name = "mysql_zstd"
url = "$URL_BASE/$SRC"
compression = "zstd"

[[databases]]
name = "mysql_gzip"
url = "$URL_BASE/$SRC"
compression = "gzip"
EOF
dbk() { "$DBKEEP" --config "$WORK/dbkeep.toml" "$@"; }
newest() { # DATABASE FIELD: FIELD of DATABASE's newest backup
    dbk list --json -d "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0][sys.argv[1]])' "$2"
}
# A dump is whole if its compressed stream is intact and mariadb-dump wrote its last line.
dump_ok() { # FILE DECOMPRESSOR
    "$2" -t -q "$1" 2>/dev/null && "$2" -dc "$1" | tail -c 200 | grep -q -- '-- Dump completed'
}

# Untimed: every tool then reads from warm caches (the whole database fits in RAM here; the
# InnoDB buffer pool may be smaller, and all tools pay the same for that).
log "warming up (mariadb-dump > /dev/null)"
mariadb-dump "${CONN[@]}" "${DUMP_OPTS[@]}" "$SRC" >/dev/null

# --- Backups ------------------------------------------------------------------------------------
# Each round: the dump alone (the floor), then each compressor's pipeline and dbkeep with the
# same compressor. Odd rounds run the standard tool first, even rounds dbkeep first, so a drift
# of the machine's speed during the run favours neither.
std_zstd() {
    timed "mariadb-dump | zstd -3" bash -c \
        'set -o pipefail; mariadb-dump "${@:3}" "$1" | zstd -q -3 > "$2"' _ "$SRC" "$WORK/classic.sql.zst" "${CONN[@]}" "${DUMP_OPTS[@]}"
    ZSTD_SIZE=$(stat -c %s "$WORK/classic.sql.zst")
    dump_ok "$WORK/classic.sql.zst" zstd || die "mariadb-dump | zstd -3 wrote an incomplete dump"
    PLAIN=$(zstd -dc "$WORK/classic.sql.zst" | wc -c)
    rm -f "$WORK/classic.sql.zst"
}
dbk_zstd() {
    timed "dbkeep backup (zstd)" "$DBKEEP" --config "$WORK/dbkeep.toml" backup -d mysql_zstd --no-cleanup
    DBK_ZSTD=$(newest mysql_zstd path)
    dump_ok "$DBK_ZSTD" zstd || die "dbkeep's zstd backup $DBK_ZSTD is incomplete"
    DBK_ZSTD_SIZE=$(stat -c %s "$DBK_ZSTD")
}
std_gzip() {
    timed "mariadb-dump | gzip -6" bash -c \
        'set -o pipefail; mariadb-dump "${@:3}" "$1" | gzip -6 > "$2"' _ "$SRC" "$WORK/classic.sql.gz" "${CONN[@]}" "${DUMP_OPTS[@]}"
    GZIP_SIZE=$(stat -c %s "$WORK/classic.sql.gz")
    dump_ok "$WORK/classic.sql.gz" gzip || die "mariadb-dump | gzip -6 wrote an incomplete dump"
    rm -f "$WORK/classic.sql.gz"
}
dbk_gzip() {
    timed "dbkeep backup (gzip)" "$DBKEEP" --config "$WORK/dbkeep.toml" backup -d mysql_gzip --no-cleanup
    DBK_GZIP=$(newest mysql_gzip path)
    dump_ok "$DBK_GZIP" gzip || die "dbkeep's gzip backup $DBK_GZIP is incomplete"
    DBK_GZIP_SIZE=$(stat -c %s "$DBK_GZIP")
    rm -f "$DBK_GZIP"
}
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: backups"
    timed "mariadb-dump > /dev/null" bash -c \
        'mariadb-dump "${@:3}" "$1" > "$2"' _ "$SRC" /dev/null "${CONN[@]}" "${DUMP_OPTS[@]}"
    if ((round % 2)); then
        std_zstd; dbk_zstd; std_gzip; dbk_gzip
    else
        dbk_zstd; std_zstd; dbk_gzip; std_gzip
    fi
done

# --- Restores -------------------------------------------------------------------------------
# Both restore the same file, dbkeep's newest zstd backup, into a database that does not exist
# yet (both times include creating it). Before each, the target is dropped and the server is
# let finish flushing what the previous load left dirty, as far as it goes down (a few dozen
# pages stay dirty on an idle server), so no restore pays for the one before.
RESTORE_ID=$(newest mysql_zstd id)
RESTORE_FILE=$(newest mysql_zstd path)
dirty_pages() {
    my -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'"
}
settle() {
    my -e "DROP DATABASE IF EXISTS $DST"
    local dirty previous=-1 _
    for _ in $(seq 1 60); do
        dirty=$(dirty_pages)
        ((dirty < 200)) && break
        ((previous < 0 || dirty < previous)) || break # no longer going down
        previous=$dirty
        sleep 2
    done
    sync
}
# The restored database must hold every row of the source.
same_rows() {
    local t
    for t in $TABLES; do
        [[ "$(my --database="$DST" -e "SELECT COUNT(*) FROM \`$t\`")" == "${ROWS_OF[$t]}" ]] ||
            die "restored $DST.$t does not have ${ROWS_OF[$t]} rows"
    done
}
std_restore() {
    settle
    timed "CREATE DATABASE + zstd -dc FILE | mariadb" bash -c \
        'set -o pipefail; mariadb "${@:3}" -e "CREATE DATABASE \`$1\` CHARACTER SET utf8mb4" && zstd -dc "$2" | mariadb "${@:3}" "$1"' \
        _ "$DST" "$RESTORE_FILE" "${CONN[@]}"
    same_rows
}
dbk_restore() {
    settle
    timed "dbkeep restore --create" "$DBKEEP" --config "$WORK/dbkeep.toml" restore "$RESTORE_ID" --to "$URL_BASE/$DST" --create
    same_rows
}
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS: restores"
    if ((round % 2)); then
        std_restore; dbk_restore
    else
        dbk_restore; std_restore
    fi
done
my -e "DROP DATABASE IF EXISTS $DST"

# --- Report ---------------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.0f\n", k / 1024 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f\n", b / 1e6 }'; }
# ratio LABEL REFERENCE [paired]: LABEL's median wall time over REFERENCE's (or the median of
# the rounds' ratios), to 4 places.
ratio() {
    if [[ "${3:-}" == paired ]]; then
        awk -v x="$(paired "$1" "$2")" 'BEGIN { printf "%.4f\n", x }'
    else
        awk -v a="$(med "$1" 2)" -v b="$(med "$2" 2)" 'BEGIN { printf "%.4f\n", a / b }'
    fi
}
x2() { awk -v x="$1" 'BEGIN { printf "%.2f×\n", x }'; }
row() { # LABEL REFERENCE OUTPUT
    local r="—" rp="—" server="—"
    if [[ -n "$2" ]]; then
        r=$(x2 "$(ratio "$1" "$2")")
        rp=$(x2 "$(ratio "$1" "$2" paired)")
    fi
    [[ -z "$SERVER_PID" ]] || server=$(printf "%.2f" "$(med "$1" 5)")
    printf '| %s | %.2f | %.2f | %s | %s | %.2f | %s | %s | %s |\n' "${1//|/\\|}" "$(med "$1" 2)" "$(best "$1")" \
        "$r" "$rp" "$(med "$1" 3)" "$server" "$(mib "$(med "$1" 4)")" "$3"
}
verdict() { # VALUE OP LIMIT: met or missed
    if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo met; else echo missed; fi
}
ZSTD_STD="mariadb-dump | zstd -3"
GZIP_STD="mariadb-dump | gzip -6"
RESTORE_STD="CREATE DATABASE + zstd -dc FILE | mariadb"
ZSTD_RATIO=$(ratio "dbkeep backup (zstd)" "$ZSTD_STD")
GZIP_RATIO=$(ratio "dbkeep backup (gzip)" "$GZIP_STD")
RESTORE_RATIO=$(ratio "dbkeep restore --create" "$RESTORE_STD")
# The largest peak of any dbkeep run, not a median.
RSS_KIB=$(for l in "dbkeep backup (zstd)" "dbkeep backup (gzip)" "dbkeep restore --create"; do
    awk -F'\t' -v l="$l" '$1 == l { print $4 }' "$WORK/results"
done | sort -n | tail -n 1)
RSS_MAX=$(awk -v k="$RSS_KIB" 'BEGIN { printf "%.1f\n", k / 1024 }')

cat <<REPORT
### MySQL/MariaDB

- Date: $(date -u +%Y-%m-%d); CPU: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores
- $("$DBKEEP" --version); MariaDB server $SERVER_VERSION; $(mariadb-dump --version | sed 's/,* for .*//; s/  */ /g'); $(zstd --version | sed 's/^\*\*\* //; s/, by.*//'); $(gzip --version | head -n 1)
- Rounds: $ROUNDS (medians, and the best round); the order of the standard tool and dbkeep alternates
- Load average (1, 5, 15 min) at the start: $LOAD_BEFORE; at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- Database $SRC: plain dump $(mb "$PLAIN") MB

| table | rows | InnoDB MB (data + indexes) |
|---|---:|---:|
$(for t in $TABLES; do printf '| %s | %s | %s |\n' "$t" "${ROWS_OF[$t]}" "$(mb "${SIZE_OF[$t]}")"; done)

| command | wall s (median) | wall s (best) | ratio | ratio per round | CPU s | server CPU s | peak RSS MiB | output MB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
$(row "mariadb-dump > /dev/null" "" "(plain $(mb "$PLAIN"))")
$(row "$ZSTD_STD" "$ZSTD_STD" "$(mb "$ZSTD_SIZE")")
$(row "dbkeep backup (zstd)" "$ZSTD_STD" "$(mb "$DBK_ZSTD_SIZE")")
$(row "$GZIP_STD" "$GZIP_STD" "$(mb "$GZIP_SIZE")")
$(row "dbkeep backup (gzip)" "$GZIP_STD" "$(mb "$DBK_GZIP_SIZE")")
$(row "$RESTORE_STD" "$RESTORE_STD" "—")
$(row "dbkeep restore --create" "$RESTORE_STD" "—")

Ratio: dbkeep's median wall time over the standard tool's; ratio per round: the median of the
rounds' ratios (each round runs both, next to each other). CPU s: the command and the processes it
waited for (the dump tool, the compressor, the client), medians; server CPU s: mariadbd's
meanwhile. Peak RSS: median of the runs' peaks, of the largest single process.

Targets (on the medians):

- zstd backup within 1.1× of \`$ZSTD_STD\`: $ZSTD_RATIO× (per round $(ratio "dbkeep backup (zstd)" "$ZSTD_STD" paired)×), $(verdict "$ZSTD_RATIO" '<=' 1.1)
- gzip backup faster than \`$GZIP_STD\`: $GZIP_RATIO× (per round $(ratio "dbkeep backup (gzip)" "$GZIP_STD" paired)×), $(verdict "$GZIP_RATIO" '<' 1)
- dbkeep's peak RSS under 64 MiB: $RSS_MAX MiB in its largest run, $(verdict "$RSS_MAX" '<' 64)
- restore within 1.05× of \`zstd -dc FILE | mariadb\`: $RESTORE_RATIO× (per round $(ratio "dbkeep restore --create" "$RESTORE_STD" paired)×), $(verdict "$RESTORE_RATIO" '<=' 1.05)
REPORT
log "done"
