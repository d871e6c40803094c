#!/usr/bin/env bash
# Build times of the `dbkeep` binary, two commits side by side in one run: a clean release
# build, then the rebuild after a one-line edit in a web page (a template), in the runner and
# in the model (the vocabulary every layer uses). Each edit is made on a built tree, timed,
# one after the other (web page, then runner, then model: each build has one new edit), and
# undone with an untimed build before the next round; the commits take turns, ROUNDS times.
#
# Usage: bench/build.sh [BEFORE [AFTER]]    (defaults: the commit before the workspace, HEAD)
#
# Environment: KEEP=1 leaves the trees in WORK; ROUNDS (default 3), WORK (scratch folder, default a new temporary one; given
# again with CLEAN=0, the trees and builds already there are reused and the clean builds are
# not timed again: their times stay in WORK/results).
# Prints a Markdown table of medians, the form bench/README.md's "Building" section quotes.

set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

BEFORE=${1:-1d1ca5d}
AFTER=${2:-HEAD}
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
CLEAN=${CLEAN:-1}
[[ $CLEAN == 1 ]] && : >"$WORK/results"

# tree NAME COMMIT: a work tree of COMMIT at $WORK/NAME, with its own target folder.
tree() {
    [[ -d "$WORK/$1" ]] && return
    git worktree add --detach --force "$WORK/$1" "$2" >/dev/null 2>&1 ||
        die "cannot check out $2"
}

# path NAME WHAT: the file whose one line is edited in tree NAME (the layout moved).
path() {
    local dir=$WORK/$1 candidates f
    case $2 in
    web) candidates="crates/dbkeep-web/templates/backups.html templates/backups.html" ;;
    runner) candidates="crates/dbkeep-core/src/runner.rs src/runner.rs" ;;
    model) candidates="crates/dbkeep-model/src/vocab.rs src/vocab.rs" ;;
    esac
    for f in $candidates; do
        if [[ -f $dir/$f ]]; then
            echo "$dir/$f"
            return
        fi
    done
}

BUILD='cd "$1" && CARGO_TARGET_DIR="$1.target" cargo build --release --locked --bin dbkeep -q'
# build NAME: the release `dbkeep` binary of tree NAME.
build() { bash -c "$BUILD" build "$WORK/$1"; }

cleanup() {
    [[ ${KEEP:-0} == 1 ]] && return
    for name in before after; do
        git worktree remove --force "$WORK/$name" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

tree before "$BEFORE"
tree after "$AFTER"
log "before: $(git rev-parse --short "$BEFORE"), after: $(git rev-parse --short "$AFTER"), work in $WORK"

# Dependencies are fetched first, outside the timing.
for name in before after; do
    (cd "$WORK/$name" && cargo fetch --locked -q)
done

if [[ $CLEAN == 1 ]]; then
    log "clean release builds"
    for name in before after; do
        measure "$name clean" bash -c "$BUILD" build "$WORK/$name"
    done
else
    # Trees checked out again are newer than their builds: built again first, untimed.
    for name in before after; do
        build "$name"
    done
fi

for round in $(seq "$ROUNDS"); do
    for name in before after; do
        for what in web runner model; do
            file=$(path "$name" "$what")
            [[ -n $file ]] || die "no $what file in $name"
            cp "$file" "$WORK/$name.$what.saved"
        done
    done
    for what in web runner model; do
        for name in before after; do
            file=$(path "$name" "$what")
            case $file in
            *.html) printf '<!-- edited -->\n' >>"$file" ;;
            *) printf '// edited\n' >>"$file" ;;
            esac
            log "round $round: $what edit in $name"
            measure "$name $what" bash -c "$BUILD" build "$WORK/$name"
        done
    done
    for name in before after; do
        for what in web runner model; do
            cp "$WORK/$name.$what.saved" "$(path "$name" "$what")"
        done
        [[ $round == "$ROUNDS" ]] || build "$name"
    done
done

printf '\n| Build (release, `dbkeep` binary) | before (%s) | after (%s) | after ÷ before |\n|---|---|---|---|\n' \
    "$(git rev-parse --short "$BEFORE")" "$(git rev-parse --short "$AFTER")"
for what in clean web runner model; do
    read -r b _ <<<"$(medians "before $what")"
    read -r a _ <<<"$(medians "after $what")"
    case $what in
    clean) label="clean build" ;;
    web) label="one line in a web page (template)" ;;
    runner) label="one line in the runner" ;;
    model) label="one line in the model (vocabulary)" ;;
    esac
    printf '| %s | %s s | %s s | %s |\n' "$label" "$b" "$a" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
done
