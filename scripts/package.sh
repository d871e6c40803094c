#!/usr/bin/env bash
# Builds the release artefacts of this checkout, from one release build (zig as the C compiler
# and linker, against glibc 2.17's symbols, so the binary runs on any Linux of this architecture
# with glibc 2.17 or newer):
#   target/wheels/dbkeep-*-manylinux2014_*.whl  the Python package, its binary stripped
#   target/<triple>/release/dbkeep      the binary with its debug symbols (cargo-deb splits them)
#   target/package/man/*.1.gz           the manual pages, from the clap definitions
#   target/package/completions/         bash, zsh and fish completions, from the same
#   target/debian/dbkeep_*.deb          the Debian package (cargo-deb), its binary stripped
#   target/debian/dbkeep-dbgsym_*       the binary's debug symbols, split off beside it
#
# Usage: scripts/package.sh
#
# maturin, zig and auditwheel (packaging/wheel-requirements.txt) are installed from PyPI into a
# virtualenv in target/tools/wheel-venv, and cargo-deb into target/tools when not on PATH. On
# an aarch64 machine the same builds aarch64 artefacts.

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

# The virtualenv with packaging/wheel-requirements.txt, made or brought up to date.
wheel_tools() {
    local venv="$PWD/target/tools/wheel-venv"
    if ! cmp -s packaging/wheel-requirements.txt "$venv/.requirements"; then
        log "pip install -r packaging/wheel-requirements.txt (into target/tools/wheel-venv)"
        rm -rf -- "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r packaging/wheel-requirements.txt >&2
        cp packaging/wheel-requirements.txt "$venv/.requirements"
    fi
    echo "$venv/bin"
}

triple=$(rustc -vV | sed -n 's/^host: //p')
# maturin runs zig as `python3 -m ziglang`: the virtualenv's python first.
PATH="$(wheel_tools):$PATH"
export PATH
zig_build=(maturin build --release --zig --compatibility manylinux2014 --target "$triple")

log "${zig_build[*]} --strip (the wheel)"
rm -rf target/wheels
"${zig_build[@]}" --strip --out target/wheels >&2

# The same build, linked again without stripping (nothing else is compiled again): the binary
# the Debian package is made of, its debug symbols split off by cargo-deb.
log "${zig_build[*]} (the binary with its debug symbols)"
"${zig_build[@]}" --strip false --out target/package/unstripped >&2
rm -rf target/package/unstripped
bin=target/$triple/release/dbkeep

out=target/package
rm -rf -- "$out/man" "$out/completions"
mkdir -p "$out/man" "$out/completions"
log "manual pages and completions"
"$bin" man --dir "$out/man" >/dev/null
gzip -9n "$out"/man/*.1
"$bin" completions bash >"$out/completions/dbkeep.bash"
"$bin" completions zsh >"$out/completions/_dbkeep"
"$bin" completions fish >"$out/completions/dbkeep.fish"

deb=$(cargo_deb)
log "cargo deb"
rm -rf target/debian
"$deb" --no-build --target "$triple" --dbgsym --output target/debian/ >&2
ls target/debian/*.deb
