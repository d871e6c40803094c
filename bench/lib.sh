# Shared by the benchmark scripts: sourced, not run. Needs $WORK (a scratch folder) set before
# `measure` is called.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# measure LABEL CMD... : wall seconds, peak RSS (KiB) and CPU seconds (user + system, of CMD
# and every process it waited for) of CMD, appended to $WORK/results
measure() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || {
        tail -n 5 "$WORK/err" >&2
        die "$label failed"
    }
    read -r wall rss user sys <"$WORK/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    printf '%s\t%s\t%s\t%s\n' "$label" "$wall" "$rss" "$cpu" >>"$WORK/results"
    log "  $label: ${wall}s, ${cpu}s CPU, $((rss / 1024)) MiB"
}

# The median CPU seconds of LABEL in $WORK/results.
cpu_median() { awk -F'\t' -v l="$1" '$1 == l { print $4 }' "$WORK/results" | median; }

# create_posts URL ROWS: the text-heavy table every PostgreSQL benchmark loads beside pgbench's
# (see design notes): prose-like bodies of 30 to 90 words, an author, tags, a time.
create_posts() {
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" <<SQL
CREATE TABLE posts (id bigint PRIMARY KEY, author int NOT NULL, tags text[], posted timestamptz, body text NOT NULL);
WITH words AS (SELECT string_to_array(
  'the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part over new sound take only little work know place year live me back give most very after thing our just name good sentence man think say great where help through much before line right too mean old any same tell boy follow came want show also around form three small set put end does another well large must big even such because turn here why ask went men read need land different home us move try kind hand picture again change off play spell air away animal house point page letter mother answer found study still learn should America world', ' ') AS w)
INSERT INTO posts
SELECT g, (g::bigint * 7919) % 50000, ARRAY['t' || g % 97, 't' || g % 13], now() - (g || ' minutes')::interval,
       (SELECT string_agg(w[1 + floor(random() * array_length(w, 1))::int], ' ')
        FROM words, generate_series(1, 30 + (g % 61)) AS n)
FROM generate_series(1, $2) AS g;
SQL
}

# dbkeep_binary ROOT: the dbkeep to measure: $DBKEEP_BIN, else a release build of ROOT.
dbkeep_binary() {
    if [[ -n "${DBKEEP_BIN:-}" ]]; then
        echo "$DBKEEP_BIN"
    else
        log "building dbkeep (release)"
        cargo build --release --quiet --manifest-path "$1/Cargo.toml"
        echo "$1/target/release/dbkeep"
    fi
}

# The median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The medians of LABEL's wall time and peak RSS (KiB) in $WORK/results.
medians() {
    local label=$1
    printf '%s %s\n' \
        "$(awk -F'\t' -v l="$label" '$1 == l { print $2 }' "$WORK/results" | median)" \
        "$(awk -F'\t' -v l="$label" '$1 == l { print $3 }' "$WORK/results" | median)"
}
