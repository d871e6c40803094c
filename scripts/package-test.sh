#!/usr/bin/env bash
# Checks the release artefacts the way a new machine meets them: builds them
# (scripts/package.sh); checks the wheel with auditwheel (manylinux2014, nothing but glibc
# linked) and installs it into a fresh virtualenv; runs lintian on the Debian package and
# `systemd-analyze verify` on its unit, then installs it into a fresh Debian root made by
# debootstrap (never into this machine's own /usr) and there runs `dbkeep --version` and, as
# the package's dbkeep user, `dbkeep doctor --json` on the installed configuration and on a
# test one. Installs debootstrap, lintian and systemd with apt-get when they are missing.
#
# Usage: scripts/package-test.sh
#
# Environment:
#   DBKEEP_DEBIAN_MIRROR   the mirror debootstrap fetches from (default:
#                          http://deb.debian.org/debian)
#   DBKEEP_DEBIAN_SUITE    the release to install into (default: bullseye, glibc 2.31)

set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

[[ $EUID -eq 0 ]] || die "run as root: debootstrap and chroot need it"

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
# cargo-deb reads the binary's library needs (Depends: libc6 …) with dpkg-shlibdeps.
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

deb=$(scripts/package.sh | tail -n 1)
[[ -f "$deb" ]] || die "scripts/package.sh made no package"
log "package: $deb ($(du -h "$deb" | cut -f1))"

wheels=(target/wheels/dbkeep-*-py3-none-manylinux2014_*.whl)
[[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || die "scripts/package.sh made no manylinux2014 wheel"
wheel=${wheels[0]}
log "wheel: $wheel ($(du -h "$wheel" | cut -f1)); auditwheel show"
report=$(target/tools/wheel-venv/bin/auditwheel show "$wheel" | tr -s ' \n' ' ')
printf '%s\n' "$report" >&2
[[ "$report" == *'consistent with the following platform tag: "manylinux_2_17_'* ]] ||
    die "auditwheel does not find the wheel manylinux2014 (glibc 2.17)"
[[ "$report" != *'external shared libraries'* ]] || die "the wheel needs libraries outside glibc"
log "the wheel installed into a fresh virtualenv"
venv=target/package-wheel-venv
rm -rf -- "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$wheel"
[[ "$("$venv/bin/dbkeep" --version)" == "$("$venv/bin/python" -m dbkeep --version)" ]] ||
    die "the wheel's dbkeep and python -m dbkeep disagree"
"$venv/bin/dbkeep" --version

log "lintian"
# One tag is left, and why: initial-upload-closes-no-bugs (the package is built from this
# tree, not uploaded to Debian's archive, so its first changelog entry closes no ITP bug).
lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$deb"

mirror=${DBKEEP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The oldest Debian release the mirror still serves: the binary is built for glibc 2.17, and
# this shows it installs and runs on a glibc older than the building machine's.
suite=${DBKEEP_DEBIAN_SUITE:-bullseye}

root=target/package-root
log "debootstrap $suite into $root (from $mirror)"
# A root an interrupted run left may still have something mounted inside: unmounted first,
# and the removal never crosses into another file system.
if [[ -d "$root" ]]; then
    findmnt -rn -o TARGET | grep -F "$PWD/$root/" | sort -r | xargs -r -n 1 umount -l || true
    rm -rf --one-file-system -- "$root"
fi
mkdir -p target/package-cache
debootstrap --variant=minbase --include=adduser,ca-certificates,systemd \
    --cache-dir="$PWD/target/package-cache" "$suite" "$root" "$mirror" >/dev/null
# No service starts inside the root (no init runs there).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

log "dpkg -i inside the root"
cp "$deb" "$root/tmp/dbkeep.deb"
chroot "$root" dpkg -i /tmp/dbkeep.deb
chroot "$root" dbkeep --version
chroot "$root" sh -c 'test "$(stat -c %a:%U /var/lib/dbkeep)" = 700:dbkeep' ||
    die "/var/lib/dbkeep is not the dbkeep user's, mode 0700"
chroot "$root" sh -c 'test "$(stat -c %a:%U:%G /etc/dbkeep/dbkeep.toml)" = 640:root:dbkeep' ||
    die "/etc/dbkeep/dbkeep.toml is not root:dbkeep 0640"
for f in /usr/share/man/man1/dbkeep.1.gz /usr/share/man/man1/dbkeep-restore.1.gz \
    /usr/share/bash-completion/completions/dbkeep /usr/share/zsh/vendor-completions/_dbkeep \
    /usr/share/fish/vendor_completions.d/dbkeep.fish /usr/lib/systemd/system/dbkeep.service; do
    [[ -f "$root$f" ]] || die "the package installs no $f"
done

log "systemd-analyze verify"
# Its manual pages are checked above; `man` on this machine would not find them in the root.
systemd-analyze verify --man=no --root="$PWD/$root" /usr/lib/systemd/system/dbkeep.service

log "dbkeep doctor --json as the dbkeep user, on the installed configuration"
# runuser, not setpriv: bullseye's setpriv fails to drop the capabilities of a newer kernel.
status=0
chroot "$root" runuser -u dbkeep -- \
    dbkeep --config /etc/dbkeep/dbkeep.toml doctor --json >target/package-doctor.json || status=$?
log "dbkeep doctor --json on a test configuration with a SQLite database"
# `dbkeep demo --no-serve` makes a SQLite database, its configuration and a first backup.
chroot "$root" runuser -u dbkeep -- \
    sh -c 'cd /var/lib/dbkeep && dbkeep demo --no-serve >/dev/null && dbkeep --config /var/lib/dbkeep/dbkeep-demo/dbkeep.toml doctor --json' \
    >target/package-doctor-demo.json || status=$?
grep -q '"level": "ok"' target/package-doctor-demo.json || die "doctor found nothing ok"
if ((status)) || grep -q '"level": "fail"' target/package-doctor.json target/package-doctor-demo.json; then
    die "doctor failed a check inside the installed root: $(cat target/package-doctor*.json)"
fi

log "the package installs, and its service is set up and checked"
