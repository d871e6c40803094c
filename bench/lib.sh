# Shared by the benchmark scripts: sourced, not run. Needs $WORK (a scratch folder) set before
# `measure` is called.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# measure LABEL CMD... : wall seconds and peak RSS (KiB) of CMD, appended to $WORK/results
measure() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || {
        tail -n 5 "$WORK/err" >&2
        die "$label failed"
    }
    read -r wall rss <"$WORK/time"
    printf '%s\t%s\t%s\n' "$label" "$wall" "$rss" >>"$WORK/results"
    log "  $label: ${wall}s, $((rss / 1024)) MiB"
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
