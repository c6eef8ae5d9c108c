#!/usr/bin/env bash
# Writes crates/bosun/layout/hot-functions.txt: the functions a running bosun
# executes, which the release link puts next to each other (see crates/bosun/build.rs).
#
#   tests/bench/layout.sh            # ~5 min: a release build with symbols, one session
#
# The session, under valgrind's callgrind (exact functions, not samples): a boot with
# a task, services with exec/http/tcp probes and a snapshot restore from a file store;
# `ctl status` (table and --json), `ctl logs`, `ctl restart`, `ctl health`, `ctl
# reload`, `/metrics` and `/health` over TCP; a unit killed and restarted; the stop
# with its backup. Every bosun process of the session counts (daemon and clients).
# The list is ordered by phase (after the boot, ctl, the boot, the stop; see below).
# Re-run it after changes that move much code; a stale list only costs memory.
# Needs valgrind and a C compiler (installed if missing); root (apt).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v cc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc >/dev/null; }

BOSUN_KEEP_SYMBOLS=1 cargo build --release -q -p bosun
W=$(mktemp -d /tmp/bosun-layout.XXXXXX)
DAEMON=""
cleanup() { [ -n "$DAEMON" ] && kill -KILL "$DAEMON" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
cp target/release/bosun "$W/bosun"

# valgrind refuses handlers for the real-time signals it keeps for itself; bosun
# installs one for every signal. This shim (profiling only) lets those calls pass.
cat > "$W/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
int sigaction(int sig, const struct sigaction *a, struct sigaction *o) {
  static int (*real)(int, const struct sigaction *, struct sigaction *);
  if (!real) real = dlsym(RTLD_NEXT, "sigaction");
  int r = real(sig, a, o);
  if (r != 0 && errno == EINVAL && sig >= 32) { errno = 0; return 0; }
  return r;
}
C
cc -shared -fPIC -O2 -o "$W/shim.so" "$W/shim.c" -ldl

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WEB=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo layout-token-0123456789 > "$W/token"; chmod 600 "$W/token"
mkdir -p "$W/store" "$W/data" "$W/www" && chmod 700 "$W/store"
echo "kept across restarts" > "$W/data/file"
cat > "$W/bosun.toml" <<TOML
[bosun]
state_dir = "$W/state"
control_socket = "$W/ctl.sock"
http_listen = "127.0.0.1:$PORT"
http_token_file = "$W/token"

[snapshot]
store = "file://$W/store"

keep_daily = 0

[snapshot.paths]
data = "$W/data"

[task.prepare]
run = "echo prepared"

[service.web]
run = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "$WEB"]
after = ["prepare"]
ready = { http = "http://127.0.0.1:$WEB/", timeout = "20s", interval = "200ms" }
health = { tcp = "127.0.0.1:$WEB", interval = "1s" }

[service.web.backup]
dump = ["tar", "-C", "$W/www", "-cf", "-", "."]
load = ["tar", "-C", "$W/www", "-xf", "-"]

[service.worker]
run = "echo started; exec sleep 1000"
after = ["web"]
ready = { exec = "true" }
health = { exec = "true", interval = "1s" }
TOML

cg() { valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$W/cg.%p" "$@"; }
session() {
    LD_PRELOAD="$W/shim.so" valgrind -q --tool=callgrind --demangle=no \
        --callgrind-out-file="$W/cg.%p" "$W/bosun" run -c "$W/bosun.toml" > "$W/log" 2>&1 &
    DAEMON=$!
    export BOSUN_SOCKET="$W/ctl.sock"
    local i
    for i in $(seq 600); do "$W/bosun" ctl status 2>/dev/null | grep -q "^worker .* ready" && break; sleep 0.1; done
    sleep 3
    echo "$DAEMON" >> "$W/daemons"
    callgrind_control -d "$DAEMON" > /dev/null 2>&1   # part 1: the boot
    cg "$W/bosun" ctl status > /dev/null
    cg "$W/bosun" ctl status --json > /dev/null
    cg "$W/bosun" --version > /dev/null
    cg "$W/bosun" ctl health > /dev/null || true
    cg "$W/bosun" ctl logs worker > /dev/null || true
    cg "$W/bosun" ctl restart worker > /dev/null || true
    cg "$W/bosun" ctl reload > /dev/null || true
    curl -s -H "Authorization: Bearer layout-token-0123456789" "http://127.0.0.1:$PORT/metrics" > /dev/null || true
    curl -s "http://127.0.0.1:$PORT/health" > /dev/null || true
    pkill -KILL -P "$DAEMON" -f "sleep 1000" || true
    sleep 3
    cg "$W/bosun" ctl status > /dev/null
    callgrind_control -d "$DAEMON" > /dev/null 2>&1   # part 2: supervising, serving ctl
    kill -TERM "$DAEMON"
    wait "$DAEMON" || true
    DAEMON=""
}
session   # the first boot: nothing to restore, a backup at the stop
session   # the second: restores that backup

python3 - "$W" crates/bosun/layout/hot-functions.txt <<'PY'
import glob, os, re, sys
# Order by phase, so each phase's code is one dense run: what the daemon runs
# after its boot (supervision, the control API: resident for the container's life),
# then the ctl clients, then the boot (dropped once the boot is complete), then the
# stop. A function goes where it is first needed in that order.
w = sys.argv[1]
daemons = set(open(w + "/daemons").read().split())
phases = {"steady": [], "client": [], "boot": [], "stop": []}
for path in sorted(glob.glob(w + "/cg.*")):
    pid = os.path.basename(path).split(".")[1]
    part = re.search(r"^part: *(\d+)", open(path, errors="replace").read(), re.M)
    part = int(part.group(1)) if part else 0
    if pid not in daemons:
        phases["client"].append(path)
    else:
        phases[{1: "boot", 2: "steady"}.get(part, "stop")].append(path)

def functions(path):
    # callgrind's format names each function once ("fn=(id) name"), then by id;
    # "ob=" says which object the following functions are in.
    names, objs, ob = {}, {}, None
    for line in open(path, errors="replace"):
        m = re.match(r"(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, text = m.groups()
        table = objs if kind.endswith("ob") else names
        if text:
            table[ident] = text
        if kind == "ob":
            ob = objs.get(ident)
        elif kind == "fn" and ob and ob.endswith("/bosun") and names.get(ident):
            yield names[ident]

hot, seen, counts = [], set(), {}
for phase in ("steady", "client", "boot", "stop"):
    before = len(hot)
    for path in phases[phase]:
        for name in functions(path):
            if name not in seen:
                seen.add(name)
                hot.append(name)
    counts[phase] = len(hot) - before
if not counts["steady"] or not counts["boot"]:
    sys.exit(f"layout: a phase is empty ({counts}): did callgrind_control -d work?")
with open(sys.argv[2], "w") as out:
    out.write("\n".join(hot) + "\n")
print(f"{len(hot)} functions ({counts}) -> {sys.argv[2]}")
PY
