#!/usr/bin/env python3
"""bosun and its peers side by side, in one go: N services of
`sh -c 'echo START $(date +%s%N) >> F; exec sleep 100000'` under bosun,
supervisord, s6, runit, Horust, circus and pm2, with a plain shell as the floor.

For each peer and each N (BENCH_SIZES, default "100 1000 5000"): time until all N
run and time to stop all (median of BENCH_REPEATS launches), daemon RSS and PSS
(s6 and runit: the sum over the supervision tree, s6-svscan + N s6-supervise,
runsvdir + N runsv), KiB per unit, median respawn after SIGKILL of a child, CPU
ticks of the tree in BENCH_IDLE_SECS idle, and the median latency of one whole
status client process. Ratios are against bosun; start also against the shell.

Status clients: `bosun ctl status` (all N units), `supervisorctl status` (all),
`s6-svstat DIR` and `sv status DIR` (one service: they read one supervise dir),
`pm2 jlist` (all), `circusctl status` (all); Horust has no status client.

Peers whose tools are missing are skipped (tests/bench/peers.sh installs them).
A bigger size runs only the peers whose start at the smaller one, scaled
linearly, stays within BENCH_BIG_SECS (default 30 s); bosun always runs. Every wait is bounded in count and time; only processes this
script started are signalled, by pid; the temp dir is removed."""
import os, shutil, signal, statistics, subprocess, sys, tempfile, time

SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "100 1000 5000").split()]
IDLE = float(os.environ.get("BENCH_IDLE_SECS", "20"))
RESPAWNS = int(os.environ.get("BENCH_RESPAWNS", "11"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
STATUS_RUNS = int(os.environ.get("BENCH_STATUS_RUNS", "30"))
BIG_SECS = float(os.environ.get("BENCH_BIG_SECS", "30"))
PEERS = os.environ.get("BENCH_PEERS", "bosun shell supervisord s6 runit horust circus pm2").split()
BOSUN = os.path.realpath(os.environ.get("BOSUN_BIN", "target/release/bosun"))
CACHE = os.path.expanduser("~/.cache/bosun")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECS", "180"))
UNIT_COMMS = {"sleep", "sh"}


def unit_body(f):
    return f"echo START $(date +%s%N) >> {f}; exec sleep 100000"


def starts(f):
    try:
        with open(f) as fh:
            return [int(l.split()[1]) for l in fh if l.startswith("START ") and len(l.split()) == 2]
    except FileNotFoundError:
        return []


def wait_lines(f, n, timeout):
    end = time.time() + timeout
    while time.time() < end:
        s = starts(f)
        if len(s) >= n:
            return s
        time.sleep(0.005)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {n} starts (have {len(starts(f))})")


def read(path, default=""):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return default


def comm(pid):
    return read(f"/proc/{pid}/comm").strip()


def kids(pid):
    """Children of every thread of pid (bosun starts units from threads of its own)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    return [int(x) for t in tids for x in read(f"/proc/{pid}/task/{t}/children").split()]


def tree(pid):
    """pid and all its descendants (bounded: a tree of at most 100k)."""
    out, todo = [], [pid]
    while todo and len(out) < 100_000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids(p))
    return out


def started(pid):
    """Start time of pid in clock ticks since boot (0 if gone)."""
    st = read(f"/proc/{pid}/stat")
    return int(st.rsplit(")", 1)[1].split()[19]) if st else 0


def alive(pid):
    st = read(f"/proc/{pid}/stat")
    return bool(st) and st.rsplit(")", 1)[1].split()[0] != "Z"


def mem(pids):
    rss = pss = 0
    for p in pids:
        for l in read(f"/proc/{p}/smaps_rollup").splitlines():
            if l.startswith("Rss:"):
                rss += int(l.split()[1])
            elif l.startswith("Pss:"):
                pss += int(l.split()[1])
    return rss, pss


def ticks(pids):
    t = 0
    for p in pids:
        st = read(f"/proc/{p}/stat")
        if st:
            rest = st.rsplit(")", 1)[1].split()
            t += int(rest[11]) + int(rest[12])
    return t


def wait_gone(pids, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.002)
    return False


def time_cmd(argv, runs, env=None, budget=20.0):
    """Median ms of one whole client process (posix_spawn + waitpid), output to /dev/null."""
    null = os.open(os.devnull, os.O_WRONLY)
    acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    out, end = [], time.time() + budget
    try:
        for i in range(runs + 1):
            t = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, env or os.environ, file_actions=acts)
            _, st = os.waitpid(pid, 0)
            if i:  # the first run warms the page cache
                out.append((time.perf_counter_ns() - t) / 1e6)
            if st != 0 and i == 0:
                print(f"  warning: {' '.join(argv[:3])}... exited {st}", file=sys.stderr)
            if time.time() > end and len(out) >= 3:
                break
    finally:
        os.close(null)
    return statistics.median(out), len(out)


class Peer:
    """One supervisor: how to configure, launch, find, query and stop it."""
    name = ""
    status_note = ""

    def __init__(self, d, n):
        self.d, self.n, self.f = d, n, os.path.join(d, f"{self.name}.starts")
        self.proc = None

    def available(self):
        return True

    def setup(self):
        pass

    def launch(self):
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, env=self.env(), start_new_session=True)

    def env(self):
        return None

    def root(self):
        return self.proc.pid if self.proc else 0

    def daemon_pids(self):
        return [p for p in tree(self.root()) if p == self.root() or comm(p) not in UNIT_COMMS]

    def status_argv(self):
        return None

    def stop(self):
        os.kill(self.root(), signal.SIGTERM)

    def reap(self):
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Bosun(Peer):
    name = "bosun"
    status_note = "ctl status, all N"

    def available(self):
        return os.access(BOSUN, os.X_OK)

    def setup(self):
        self.sock = os.path.join(self.d, "bosun.sock")
        with open(os.path.join(self.d, "bosun.toml"), "w") as c:
            c.write(f'[bosun]\nstate_dir = "{self.d}/bosun-state"\ncontrol_socket = "{self.sock}"\nstop_budget = "60s"\n')
            for i in range(self.n):
                # Restart at once (as the peers do): no backoff delay for the benchmark.
                c.write(f'\n[service.s{i}]\nrun = "{unit_body(self.f)}"\noutput = "null"\n'
                        'backoff = { initial = "0s" }\nstart_limit = { burst = 1000 }\n')

    def argv(self):
        return [BOSUN, "run", "-c", os.path.join(self.d, "bosun.toml")]

    def env(self):
        return dict(os.environ, BOSUN_LOG="warn")

    def status_argv(self):
        return [BOSUN, "ctl", "--socket", self.sock, "status"]


class Supervisord(Peer):
    name = "supervisord"
    status_note = "supervisorctl status, all N"

    def available(self):
        return shutil.which("supervisord") is not None

    def setup(self):
        self.conf = os.path.join(self.d, "supervisord.conf")
        with open(self.conf, "w") as c:
            c.write(f"[supervisord]\nnodaemon=true\nlogfile={self.d}/supervisord.log\npidfile={self.d}/supervisord.pid\n"
                    f"minfds=1024\n[unix_http_server]\nfile={self.d}/supervisor.sock\n"
                    f"[supervisorctl]\nserverurl=unix://{self.d}/supervisor.sock\n"
                    "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
            for i in range(self.n):
                # supervisord expands %(...)s in its config: escape the date format.
                c.write(f"[program:s{i}]\ncommand=sh -c '{unit_body(self.f).replace('%', '%%')}'\nautorestart=true\n"
                        "startsecs=0\nstartretries=1000\nstdout_logfile=NONE\nstderr_logfile=NONE\n")

    def argv(self):
        return ["supervisord", "-n", "-c", self.conf]

    def status_argv(self):
        return [shutil.which("supervisorctl"), "-c", self.conf, "status"]


class ScanDir(Peer):
    """s6 and runit: one directory per service with an executable `run`."""

    def setup(self):
        self.scan = os.path.join(self.d, f"{self.name}-scan")
        os.makedirs(self.scan)
        for i in range(self.n):
            sd = os.path.join(self.scan, f"s{i}")
            os.makedirs(sd)
            with open(os.path.join(sd, "run"), "w") as r:
                r.write(f"#!/bin/sh\n{unit_body(self.f)}\n")
            os.chmod(os.path.join(sd, "run"), 0o755)


class S6(ScanDir):
    name = "s6"
    status_note = "s6-svstat, one service"

    def available(self):
        return shutil.which("s6-svscan") is not None

    def argv(self):
        # -c: room for N services (the default is 500: at 1000 half would not run).
        return ["s6-svscan", "-c", str(max(500, self.n + 16)), self.scan]

    def status_argv(self):
        return [shutil.which("s6-svstat"), os.path.join(self.scan, "s0")]

    def stop(self):
        # -t: SIGTERM every s6-supervise (each takes its service down) and exit.
        subprocess.run(["s6-svscanctl", "-t", self.scan], timeout=30)


class Runit(ScanDir):
    name = "runit"
    status_note = "sv status, one service"

    def available(self):
        return shutil.which("runsvdir") is not None

    def argv(self):
        return ["runsvdir", "-P", self.scan]

    def status_argv(self):
        return [shutil.which("sv"), "status", os.path.join(self.scan, "s0")]

    def stop(self):
        # runsvdir's SIGHUP only makes each runsv exit once its service is down:
        # bring them down first (one sv for all), then hang up.
        dirs = [os.path.join(self.scan, f"s{i}") for i in range(self.n)]
        subprocess.run(["sv", "-w", "60", "force-stop", *dirs], stdout=subprocess.DEVNULL, timeout=90)
        os.kill(self.root(), signal.SIGHUP)


class Horust(Peer):
    name = "horust"
    status_note = "none (horustctl is a separate crate)"

    def bin(self):
        return shutil.which("horust") or os.path.expanduser("~/.cargo/bin/horust")

    def available(self):
        return os.access(self.bin(), os.X_OK)

    def setup(self):
        self.sd = os.path.join(self.d, "horust-services")
        os.makedirs(self.sd)
        for i in range(self.n):
            with open(os.path.join(self.sd, f"s{i}.toml"), "w") as c:
                body = unit_body(self.f).replace("\\", "\\\\").replace('"', '\\"')
                c.write(f'command = "/bin/sh -c \'{body}\'"\nstdout = "/dev/null"\nstderr = "/dev/null"\n'
                        '[environment]\nkeep-env = true\n[restart]\nstrategy = "always"\nbackoff = "0s"\nattempts = 0\n'
                        '[termination]\nwait = "10s"\n')

    def argv(self):
        uds = os.path.join(self.d, "horust-uds")
        os.makedirs(uds, exist_ok=True)
        return [self.bin(), "--services-path", self.sd, "--uds-folder-path", uds]


class Circus(Peer):
    name = "circus"
    status_note = "circusctl status, all N"
    venv = os.path.join(CACHE, "circus-venv", "bin")

    def available(self):
        return os.access(os.path.join(self.venv, "circusd"), os.X_OK)

    def setup(self):
        self.ep = f"ipc://{self.d}/circus.ctl"
        self.conf = os.path.join(self.d, "circus.ini")
        with open(self.conf, "w") as c:
            c.write(f"[circus]\nendpoint = {self.ep}\npubsub_endpoint = ipc://{self.d}/circus.pub\n"
                    "statsd = False\ncheck_delay = 5\nwarmup_delay = 0\n")
            for i in range(self.n):
                c.write(f"[watcher:s{i}]\ncmd = sh\nargs = -c '{unit_body(self.f)}'\n"
                        "numprocesses = 1\nrespawn = True\nwarmup_delay = 0\ncopy_env = True\n"
                        "max_retry = -1\ngraceful_timeout = 10\n")

    def argv(self):
        return [os.path.join(self.venv, "circusd"), self.conf]

    def status_argv(self):
        return [os.path.join(self.venv, "circusctl"), "--endpoint", self.ep, "--timeout", "30", "status"]


class Pm2(Peer):
    name = "pm2"
    status_note = "pm2 jlist, all N"
    bin_ = os.path.join(CACHE, "pm2", "node_modules", ".bin", "pm2")

    def available(self):
        return os.access(self.bin_, os.X_OK)

    def setup(self):
        self.pid = 0
        self.home = os.path.join(self.d, "pm2-home")
        os.makedirs(self.home)
        self.eco = os.path.join(self.d, "ecosystem.config.js")
        apps = ",\n".join(
            f'{{name: "s{i}", script: "sh", args: ["-c", {unit_body(self.f)!r}], interpreter: "none", '
            'autorestart: true, restart_delay: 0, out_file: "/dev/null", error_file: "/dev/null", '
            'max_restarts: 100000, min_uptime: 0}' for i in range(self.n))
        with open(self.eco, "w") as c:
            c.write(f"module.exports = {{ apps: [\n{apps}\n] }};\n")

    def env(self):
        return dict(os.environ, PM2_HOME=self.home)

    def launch(self):
        # `pm2 start` forks the daemon (God) and returns; time runs from here.
        try:
            subprocess.run([self.bin_, "start", self.eco], env=self.env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        finally:
            # Also when `pm2 start` timed out: God and the units it started are
            # ours to end (by this pid's tree), not orphans left to the host.
            self.pid = int(read(os.path.join(self.home, "pm2.pid"), "0").strip() or 0)

    def root(self):
        return self.pid

    def status_argv(self):
        return [self.bin_, "jlist"]

    def stop(self):
        subprocess.run([self.bin_, "kill"], env=self.env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=TIMEOUT)

    def reap(self):
        # pm2's apps carry its PM2_HOME (this run's own temp dir) in their
        # environment: any still alive once God is gone are this run's, orphaned
        # (a `pm2 start` of 5000 that timed out left 4993 behind).
        mark = f"PM2_HOME={self.home}".encode()
        left = []
        for e in os.listdir("/proc"):
            if e.isdigit() and int(e) != os.getpid():
                try:
                    with open(f"/proc/{e}/environ", "rb") as f:
                        if mark in f.read().split(b"\0"):
                            left.append(int(e))
                except OSError:
                    pass
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            print(f"  pm2: ended {len(left)} processes it left behind", file=sys.stderr)


def respawn_latency(peer, count):
    """SIGKILL one unit at a time, the oldest (s6 and runit hold back a service that
    dies within a second of its start); latency = next START stamp - kill time."""
    lat = []
    for _ in range(RESPAWNS):
        victims = [p for p in tree(peer.root()) if comm(p) == "sleep"]
        if not victims:
            break
        # The oldest unit: never the one just respawned (in a tree of supervisors
        # it keeps its place, and s6, runit and Horust throttle a quick re-death).
        victim = min(victims, key=started)
        t_kill = time.time_ns()
        os.kill(victim, signal.SIGKILL)
        try:
            s = wait_lines(peer.f, count + 1, 10)
        except TimeoutError:
            break
        count += 1
        lat.append((max(s) - t_kill) / 1e6)
        time.sleep(0.05)
    return (statistics.median(lat) if lat else float("nan")), count


def one_run(peer, full):
    """Launch, wait for all N, (first run: memory, idle, respawn, status), stop."""
    if os.path.exists(peer.f):
        os.remove(peer.f)
    r = {}
    t0 = time.time_ns()
    try:
        peer.launch()
        s = wait_lines(peer.f, peer.n, TIMEOUT)
        r["start_ms"] = (max(s[: peer.n]) - t0) / 1e6
        if full:
            time.sleep(1.5)  # let start timers and first-time work settle
            pids = peer.daemon_pids()
            r["rss_kb"], r["pss_kb"] = mem(pids)
            r["procs"] = len(pids)
            t_before = ticks(pids)
            time.sleep(IDLE)
            r["idle_ticks"] = ticks(pids) - t_before
            r["respawn_ms"], _ = respawn_latency(peer, len(starts(peer.f)))
            argv = peer.status_argv()
            if argv:
                runs = STATUS_RUNS if peer.name in ("bosun", "s6", "runit") else max(3, STATUS_RUNS // 6)
                r["status_ms"], r["status_runs"] = time_cmd(argv, runs, peer.env())
                # The like-for-like figure against s6-svstat and sv status, which
                # report one service: bosun's `ctl status NAME`.
                if peer.name == "bosun":
                    r["status_one_ms"], _ = time_cmd(argv + ["s0"], runs, peer.env())
                elif peer.name in ("s6", "runit"):
                    r["status_one_ms"] = r["status_ms"]
            time.sleep(1.5)
    finally:
        everything = tree(peer.root()) if peer.root() else []
        t1 = time.time()
        try:
            peer.stop()
        except (subprocess.TimeoutExpired, OSError) as e:
            # (pm2 kill of a half-started pm2 at 5000 timed out): the leftovers
            # below are still ended.
            print(f"  {peer.name}: stop: {e}", file=sys.stderr)
        ok = wait_gone(everything, TIMEOUT)
        r["stop_ms"] = (time.time() - t1) * 1000
        peer.reap()
        for p in everything:  # leftovers of a peer that did not stop: ours, by pid
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not ok:
            r["stop_ms"] = float("nan")
    return r


def shell_floor(d, n):
    f = os.path.join(d, "shell.starts")
    if os.path.exists(f):
        os.remove(f)
    script = os.path.join(d, "floor.sh")
    with open(script, "w") as s:
        s.write("\n".join(f"sh -c '{unit_body(f)}' &" for _ in range(n)) + "\nwait\n")
    t0 = time.time_ns()
    p = subprocess.Popen(["sh", script], start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        s = wait_lines(f, n, TIMEOUT)
        return (max(s) - t0) / 1e6
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        wait_gone([q for q in tree(p.pid)], 30)


CLASSES = {c.name: c for c in (Bosun, Supervisord, S6, Runit, Horust, Circus, Pm2)}


def bench_size(n, peers, k):
    d = tempfile.mkdtemp(prefix=f"bosun-peers-{n}-")
    res = {}
    try:
        if "shell" in PEERS:
            res["shell"] = {"start_ms": statistics.median([shell_floor(d, n) for _ in range(k)])}
        for name in peers:
            peer = CLASSES[name](d, n)
            peer.setup()
            print(f"  {name}, {n} units, load {load()} ...", file=sys.stderr, flush=True)
            runs = []
            try:
                for i in range(k):
                    runs.append(one_run(peer, i == 0))
            except (TimeoutError, subprocess.TimeoutExpired, OSError) as e:
                print(f"  {name} at {n}: {e}", file=sys.stderr)
                if not runs:
                    res[name] = {"error": str(e)[:60]}
                    continue
            r = dict(runs[0])
            for key in ("start_ms", "stop_ms"):
                r[key] = statistics.median([x[key] for x in runs])
            r["k"] = len(runs)
            res[name] = r
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return res


def load():
    return " ".join(read("/proc/loadavg").split()[:3])


def fmt(v, f):
    if v is None:
        return "–"
    if isinstance(v, float) and v != v:
        return "n/a"
    return f % v


def table(n, res, cols):
    shell = res.get("shell", {}).get("start_ms")
    b = res.get("bosun", {})
    print(f"\n#### {n} units (load average at the end: {load()})\n")
    print("| metric | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    rows = [
        (f"time until all {n} run (ms)", "start_ms", "%.0f"),
        ("start / plain shell", "start_vs_shell", "%.2f×"),
        ("daemon RSS (MiB)", "rss_mib", "%.1f"),
        ("daemon PSS (MiB)", "pss_mib", "%.1f"),
        ("RSS KiB per unit", "rss_per_unit", "%.0f"),
        ("median respawn after SIGKILL (ms)", "respawn_ms", "%.1f"),
        (f"CPU ticks in {IDLE:g} s idle", "idle_ticks", "%d"),
        ("time to stop all (ms)", "stop_ms", "%.0f"),
        ("status client (ms, median)", "status_ms", "%.2f"),
        ("status of one unit (ms, median)", "status_one_ms", "%.2f"),
    ]
    for r in res.values():
        if "rss_kb" in r:
            r["rss_mib"], r["pss_mib"] = r["rss_kb"] / 1024, r["pss_kb"] / 1024
            r["rss_per_unit"] = r["rss_kb"] / n
        if shell and "start_ms" in r:
            r["start_vs_shell"] = r["start_ms"] / shell
    for label, key, f in rows:
        cells = []
        for c in cols:
            r = res.get(c, {})
            if "error" in r:
                cells.append("failed" if key == "start_ms" else "")
                continue
            v = r.get(key)
            cell = fmt(v, f)
            if c != "bosun" and v is not None and b.get(key) and key not in ("start_vs_shell",) and v == v and v:
                cell += f" ({b[key] / v:.2f})"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")
    notes = [f"{c}: {res[c]['error']}" for c in cols if "error" in res.get(c, {})]
    print("\n(x.xx) = bosun / peer. Status: " + "; ".join(
        f"{c} = {CLASSES[c].status_note}" for c in cols if c in CLASSES)
        + "; one unit: bosun ctl status s0, s6-svstat and sv status of one service.")
    print("Memory and idle ticks: s6 and runit summed over the supervision tree ("
          + ", ".join(f"{c} {res[c].get('procs', '?')} processes" for c in ("s6", "runit") if c in res and "procs" in res[c])
          + f"). start/stop: median of {max([r.get('k', 0) for r in res.values()] or [0])} launches.")
    for line in notes:
        print(f"failed: {line}")


def main():
    print(f"bosun: {BOSUN}; sizes {SIZES}; load average at start: {load()}; {os.cpu_count()} CPUs", file=sys.stderr)
    peers = [p for p in PEERS if p in CLASSES and CLASSES[p](tempfile.gettempdir(), 1).available()]
    skipped = [p for p in PEERS if p in CLASSES and p not in peers]
    if skipped:
        print(f"skipped (not installed): {' '.join(skipped)}", file=sys.stderr)
    out = []
    for i, n in enumerate(SIZES):
        k = REPEATS if n <= 100 else max(2, REPEATS - 1)
        res = bench_size(n, peers, k)
        cols = [p for p in ["bosun", "shell"] + peers if p in res and not (p == "bosun" and p not in peers)]
        cols = list(dict.fromkeys(cols))
        table(n, res, cols)
        sys.stdout.flush()
        out.append(res)
        # The next (bigger) size: bosun, plus the peers that started this one in time.
        nxt = SIZES[i + 1] if i + 1 < len(SIZES) else None
        if nxt:
            scale = nxt / n
            peers = [p for p in peers if p == "bosun" or
                     ("start_ms" in res.get(p, {}) and res[p]["start_ms"] * scale / 1000 <= BIG_SECS)]


if __name__ == "__main__":
    main()
