#!/usr/bin/env bash
# Logins with two-factor login: how long the second step (the TOTP code) takes, apart from
# the password's Argon2id hash, against the password step and a login without 2FA.
# See bench/README.md ("Logins").
#
# One run starts `dbkeep serve` on a fresh SQLite catalog and adds N users with
# `dbkeep user add`. Each user logs in once with the password alone, turns on two-factor
# login on the account page (the code of the current 30-second step), logs out, and logs in
# again: the password step (POST /login, the Argon2id check) and then the code step
# (POST /login/2fa with the next step's code), each timed from the request's start to its
# answer, one user at a time. p50, p99 and the largest time of each step are printed.
#
# Usage: bench/login.sh > login-results.md   (progress on stderr)
#
# Needs python3 (standard library only) and curl.
#
# Environment (defaults in brackets):
#   N           users [200]
#   PORT        where serve listens [first free port from 18180]
#   DBKEEP_BIN  benchmark this binary instead of building one

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
N=${N:-200}
PASSWORD="bench-login-password"
P99_TARGET_MS=50

for tool in python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z "${PORT:-}" ]]; then
    PORT=18180
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
fi
if [[ -z "${DBKEEP_BIN:-}" ]]; then
    log "building dbkeep (release)"
    (cd "$ROOT" && cargo build --release --quiet)
    DBKEEP_BIN="$ROOT/target/release/dbkeep"
fi

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/dbkeep.toml" <<TOML
listen = "127.0.0.1:$PORT"
timezone = "UTC"
[[databases]]
name = "app"
url = "sqlite:app.db"
schedules = ["0 0 1 1 *"]
TOML
log "adding $N users"
for i in $(seq 1 "$N"); do
    printf '%s\n' "$PASSWORD" | "$DBKEEP_BIN" --config "$work/dbkeep.toml" user add "u$i" >/dev/null
done
DBKEEP_ADMIN_PASSWORD="$PASSWORD" "$DBKEEP_BIN" --config "$work/dbkeep.toml" serve \
    >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

log "logging $N users in, with and without their second factor"
python3 - "$PORT" "$N" "$PASSWORD" "$P99_TARGET_MS" <<'PY'
import base64, hashlib, hmac, http.cookiejar, re, struct, sys, time, urllib.parse, urllib.request

port, n, password, target = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
base = f"http://127.0.0.1:{port}"

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

def client():
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    return opener

def call(opener, path, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    start = time.perf_counter()
    try:
        with opener.open(base + path, data=data) as r:
            body, status = r.read().decode(), r.status
    except urllib.error.HTTPError as e:
        body, status = e.read().decode(), e.code
    return status, body, (time.perf_counter() - start) * 1000

def csrf(body):
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)

def code(secret, at):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", at // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)

def password_step(opener, user):
    _, body, _ = call(opener, "/login")
    status, _, ms = call(opener, "/login", {"username": user, "password": password,
                                            "csrf_token": csrf(body), "next": "/"})
    assert status == 303, status
    return ms

plain, with_password, second = [], [], []
for i in range(1, n + 1):
    user, o = f"u{i}", client()
    plain.append(password_step(o, user))
    _, body, _ = call(o, "/account")
    token = csrf(body)
    _, body, _ = call(o, "/account/2fa/start", {"csrf_token": token})
    secret = re.search(r'<code class="secret">([A-Z2-7]+)<', body).group(1)
    status, _, _ = call(o, "/account/2fa/confirm", {"csrf_token": token, "code": code(secret, int(time.time()))})
    assert status == 200, status
    call(o, "/logout", {"csrf_token": token})
    o = client()
    with_password.append(password_step(o, user))
    _, body, _ = call(o, "/login/2fa?next=/")
    status, _, ms = call(o, "/login/2fa", {"code": code(secret, int(time.time()) + 30),
                                           "csrf_token": csrf(body), "next": "/"})
    assert status == 303, status
    second.append(ms)

def stats(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))], xs[-1]

print(f"| step ({n} logins, one at a time) | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|")
for name, xs in [("password only (no 2FA): POST /login", plain),
                 ("password step of a 2FA login: POST /login", with_password),
                 ("code step: POST /login/2fa", second)]:
    p50, p99, top = stats(xs)
    print(f"| {name} | {p50:.1f} | {p99:.1f} | {top:.1f} |")
p99 = stats(second)[1]
print()
print(f"Code step p99 {p99:.1f} ms: {'within' if p99 < target else 'OVER'} the {target:.0f} ms target.")
if p99 >= target:
    sys.exit(1)
PY
