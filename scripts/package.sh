#!/usr/bin/env bash
# Builds the release artefacts of this checkout:
#   target/release/dbkeep          the binary (cargo-deb strips it into the package)
#   target/package/man/*.1.gz      the manual pages, from the clap definitions
#   target/package/completions/    bash, zsh and fish completions, from the same
#   target/debian/dbkeep_*.deb     the Debian package (cargo-deb), its binary stripped
#   target/debian/dbkeep-dbgsym_*  the binary's debug symbols, split off beside it
#
# Usage: scripts/package.sh
#
# cargo-deb is installed into target/tools when it is not on PATH.

set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

CARGO_DEB_VERSION=3.8.0

cargo_deb() {
    if command -v cargo-deb >/dev/null 2>&1; then
        command -v cargo-deb
        return
    fi
    local tools="$PWD/target/tools"
    if [[ ! -x "$tools/bin/cargo-deb" ]]; then
        log "cargo install cargo-deb $CARGO_DEB_VERSION (into target/tools)"
        cargo install --quiet --locked --version "$CARGO_DEB_VERSION" --root "$tools" cargo-deb >&2
    fi
    echo "$tools/bin/cargo-deb"
}

log "cargo build --release"
cargo build --release --bin dbkeep

out=target/package
rm -rf -- "$out"
mkdir -p "$out/man" "$out/completions"
log "manual pages and completions"
target/release/dbkeep man --dir "$out/man" >/dev/null
gzip -9n "$out"/man/*.1
target/release/dbkeep completions bash >"$out/completions/dbkeep.bash"
target/release/dbkeep completions zsh >"$out/completions/_dbkeep"
target/release/dbkeep completions fish >"$out/completions/dbkeep.fish"

deb=$(cargo_deb)
log "cargo deb"
rm -rf target/debian
"$deb" --no-build --dbgsym --output target/debian/ >&2
ls target/debian/*.deb
