#!/usr/bin/env bash
# `bosun ctl health` on the control socket while the API is flooded.
#
#   tests/bench/flood.sh                 # build and use target/release/bosun
#   BOSUN_BIN=/path/to/bosun tests/bench/flood.sh
#
# One bosun (PID 1 of its own pid namespace, `http_listen` on loopback,
# `control_group = "users"`, one unit) and four phases, each timing HEALTH_RUNS
# (default 50) `bosun ctl health` runs 100 ms apart:
#   quiet     no flood;
#   tcp-one   a sustained TCP flood: 1200 idle connections from 127.0.0.1 and
#             100 each from 127.0.0.2-4, every one bosun closes or turns away
#             replaced at once (the way an attacker keeps a flood up);
#   tcp-many  the same plus 100 each from 127.0.0.5-13 (more than TCP's share);
#   slowloris 1100 slowloris connections on the socket from `nobody` in group
#             `users` (a control_group member), replaced as they end.
# Each run is one posix_spawn + waitpid from a small Python timer, bounded at
# 15 s; a run that fails or times out counts as failed. Every flood is bounded
# in time (its phase) and closed at its end. Root needed (unshare, setpriv).
set -euo pipefail
cd "$(dirname "$0")/../.."

HEALTH_RUNS=${HEALTH_RUNS:-50}
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -q -p bosun
fi
BOSUN=$(realpath "${BOSUN_BIN:-target/release/bosun}")
# The floods hold a few thousand sockets; bosun inherits this limit too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/bosun-bench-flood.XXXXXX)
chmod 755 "$WORK"
UNSHARE_PID=""
cleanup() {
    if [ -n "$UNSHARE_PID" ]; then
        # unshare ignores SIGTERM while it waits; --kill-child takes bosun down.
        kill -KILL "$UNSHARE_PID" 2>/dev/null || true
        wait "$UNSHARE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/bosun.toml" <<EOF
[bosun]
state_dir = "$WORK/state"
control_socket = "$WORK/run/ctl.sock"
control_group = "users"
http_listen = "127.0.0.1:$PORT"

[service.web]
run = ["sleep", "100000"]
start_secs = "100ms"
EOF
BOSUN_HTTP_TOKEN=bench-token-0c3e BOSUN_LOG=info \
    unshare --pid --fork --mount-proc --kill-child "$BOSUN" run -c "$WORK/bosun.toml" >"$WORK/bosun.log" 2>&1 &
UNSHARE_PID=$!
for _ in $(seq 1 300); do
    "$BOSUN" ctl --socket "$WORK/run/ctl.sock" health >/dev/null 2>&1 && break
    sleep 0.1
done
"$BOSUN" ctl --socket "$WORK/run/ctl.sock" health >/dev/null || { tail -20 "$WORK/bosun.log" >&2; exit 1; }
chmod 755 "$WORK/run"
echo "bosun $("$BOSUN" --version 2>/dev/null || true) up; fd limit $(ulimit -n)" >&2

cat >"$WORK/slowloris.py" <<'PY'
import socket, sys, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end, socks = time.time() + secs, []
while time.time() < end:
    while len(socks) < n and time.time() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(path)
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    time.sleep(0.5)
    alive = []
    for s in socks:
        try:
            s.recv(4096)           # an answer (turned away) or the end
            s.close()
            continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        try:
            s.send(b"X-Slow: 1\r\n")
            alive.append(s)
        except BlockingIOError:
            alive.append(s)
        except OSError:
            s.close()
    socks = alive
PY
chmod 644 "$WORK/slowloris.py"

BOSUN_PID=$(cat "/proc/$UNSHARE_PID/task/$UNSHARE_PID/children" | awk '{print $1}')
python3 - "$HEALTH_RUNS" "$BOSUN" "$WORK" "$PORT" "$BOSUN_PID" <<'PY'
import errno, os, select, socket, statistics, subprocess, sys, threading, time

runs, bosun, work, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
bosun_pid = sys.argv[5]
sock = f"{work}/run/ctl.sock"
null = os.open(os.devnull, os.O_WRONLY)
acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]

def health():
    """One timed `ctl health`: (ms, ok). Killed after 15 s."""
    argv = [bosun, "ctl", "--socket", sock, "health"]
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return (time.perf_counter() - t) * 1e3, status == 0
        if time.perf_counter() - t > 15:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return (time.perf_counter() - t) * 1e3, False
        time.sleep(0.001)

def connect_many(src, n):
    """Up to n idle connections from src, all connects in flight at once, 3 s bound."""
    pending = {}
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind((src, 0))
        if s.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS):
            pending[s.fileno()] = s
        else:
            s.close()
    p, done, end = select.poll(), [], time.time() + 3
    for fd in pending:
        p.register(fd, select.POLLOUT)
    while pending and time.time() < end:
        for fd, _ in p.poll(100):
            s = pending.pop(fd)
            p.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(s)
            else:
                s.close()
    for s in pending.values():
        s.close()
    return done

class Flood:
    """Keeps `want` idle connections per host open, replacing ended ones."""
    def __init__(self, hosts):
        self.hosts, self.stop, self.rounds = hosts, False, 0
        self.open = {h: [] for h, _ in hosts}
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
    def run(self):
        while not self.stop:
            for h, want in self.hosts:
                keep = []
                for s in self.open[h]:
                    try:
                        s.recv(1, socket.MSG_PEEK)
                        s.close()          # answered (turned away) or closed
                    except BlockingIOError:
                        keep.append(s)
                    except OSError:
                        s.close()
                self.open[h] = keep + connect_many(h, want - len(keep))
            self.rounds += 1
            time.sleep(0.1)
    def wait_up(self):
        while self.rounds < 1:
            time.sleep(0.05)
    def end(self):
        self.stop = True
        self.t.join()
        for ss in self.open.values():
            for s in ss:
                s.close()

def phase(name, flood=()):
    held = sum(len(ss) for f in flood for ss in f.open.values())
    times, failed = [], 0
    for _ in range(runs):
        ms, ok = health()
        times.append(ms)
        failed += not ok
        time.sleep(0.1)
    t = sorted(times)
    p95 = t[min(len(t) - 1, int(len(t) * 0.95))]
    fds = len(os.listdir(f"/proc/{bosun_pid}/fd"))
    print(f"| {name:<9} | {len(t):>4} | {failed:>6} | {statistics.median(t):>9.1f} | {p95:>8.1f} | {t[-1]:>8.1f} | {held:>11} | {fds:>10} |", flush=True)

print(f"| phase     | runs | failed | median ms |   p95 ms |   max ms | flood conns | bosun fds |")
print(f"|-----------|------|--------|-----------|----------|----------|-------------|-----------|")
phase("quiet")
one = Flood([("127.0.0.1", 1200)] + [(f"127.0.0.{h}", 100) for h in range(2, 5)])
one.wait_up()
phase("tcp-one", [one])
many = Flood([(f"127.0.0.{h}", 100) for h in range(5, 14)])
many.wait_up()
phase("tcp-many", [one, many])
many.end()
one.end()
time.sleep(6)   # let bosun close what it still held
loris = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=100", "--clear-groups",
                          "/usr/bin/python3", f"{work}/slowloris.py", sock, "1100", "600"])
time.sleep(2)
try:
    phase("slowloris")
finally:
    loris.kill()
    loris.wait()
PY
