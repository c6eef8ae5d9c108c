#!/usr/bin/env python3
"""bosun vs supervisord (and a plain shell) supervising N services of
`sh -c 'echo START $(date +%s%N) >> F; exec sleep 100000'`.

Prints, for each: time until all N run, daemon RSS and PSS, median respawn
latency after SIGKILL of a child, CPU ticks used in an idle window, time to
stop all; and the ratios bosun/supervisord. Every loop is bounded."""
import os, signal, statistics, subprocess, sys, tempfile, time

N = int(os.environ.get("BENCH_UNITS", "100"))
IDLE = float(os.environ.get("BENCH_IDLE_SECS", "20"))
RESPAWNS = int(os.environ.get("BENCH_RESPAWNS", "21"))
BOSUN = os.environ.get("BOSUN_BIN", "target/release/bosun")
TIMEOUT = 60.0


def unit_cmd(f):
    return f"echo START $(date +%s%N) >> {f}; exec sleep 100000"


def starts(f):
    try:
        with open(f) as fh:
            return [int(l.split()[1]) for l in fh if l.startswith("START ")]
    except FileNotFoundError:
        return []


def wait_lines(f, n, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        s = starts(f)
        if len(s) >= n:
            return s
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {n} starts in {f} (have {len(starts(f))})")


def mem(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for l in fh:
            if l.startswith("Rss:"):
                rss = int(l.split()[1])
            elif l.startswith("Pss:"):
                pss = int(l.split()[1])
    return rss, pss


def ticks(pid):
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except FileNotFoundError:
        return []


def respawn_latency(daemon_pid, f, n_now):
    """SIGKILL one child at a time; the latency is the next START stamp minus the kill time."""
    lat = []
    count = n_now
    for _ in range(RESPAWNS):
        kids = [k for k in children(daemon_pid) if open(f"/proc/{k}/comm").read().strip() == "sleep"]
        if not kids:
            break
        victim = kids[len(kids) // 2]
        t_kill = time.time_ns()
        os.kill(victim, signal.SIGKILL)
        s = wait_lines(f, count + 1, 10)
        count += 1
        lat.append((max(s) - t_kill) / 1e6)
        time.sleep(0.05)
    return statistics.median(lat) if lat else float("nan")


def measure(name, argv, f, env=None):
    t0 = time.time_ns()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    s = wait_lines(f, N)
    t_all = (max(s[:N]) - t0) / 1e6
    time.sleep(1.5)  # let start_secs timers and first-time work settle
    rss, pss = mem(p.pid)
    t_before = ticks(p.pid)
    time.sleep(IDLE)
    idle = ticks(p.pid) - t_before
    resp = respawn_latency(p.pid, f, len(starts(f)))
    time.sleep(1.5)
    t1 = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        raise SystemExit(f"{name} did not stop within {TIMEOUT}s")
    stop = (time.time() - t1) * 1000
    return dict(start_ms=t_all, rss_kb=rss, pss_kb=pss, respawn_ms=resp, idle_ticks=idle, stop_ms=stop)


def shell_baseline(d):
    f = os.path.join(d, "shell.starts")
    if os.path.exists(f):
        os.remove(f)
    script = " ".join([f"sh -c '{unit_cmd(f)}' &" for _ in range(N)]) + " wait"
    t0 = time.time_ns()
    p = subprocess.Popen(["sh", "-c", script], start_new_session=True, stdout=subprocess.DEVNULL)
    s = wait_lines(f, N)
    t = (max(s) - t0) / 1e6
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    return t


def main():
    d = tempfile.mkdtemp(prefix="bosun-bench-")
    fb, fs = os.path.join(d, "bosun.starts"), os.path.join(d, "supervisord.starts")
    with open(os.path.join(d, "bosun.toml"), "w") as c:
        c.write(f'[bosun]\nstate_dir = "{d}/state"\ncontrol_socket = "{d}/ctl.sock"\nstop_budget = "60s"\n')
        for i in range(N):
            # Restart at once (as supervisord does): no backoff delay for the benchmark.
            c.write(f'\n[service.s{i}]\nrun = "{unit_cmd(fb)}"\noutput = "null"\nbackoff = {{ initial = "0s" }}\nstart_limit = {{ burst = 1000 }}\n')
    with open(os.path.join(d, "supervisord.conf"), "w") as c:
        c.write(f"[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n")
        c.write(f"[unix_http_server]\nfile={d}/supervisor.sock\n")
        c.write("[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
        for i in range(N):
            # supervisord expands %(...)s in its config: escape the date format.
            c.write(f"[program:s{i}]\ncommand=sh -c '{unit_cmd(fs).replace('%', '%%')}'\nautorestart=true\nstartsecs=0\nstartretries=1000\nstdout_logfile=NONE\nstderr_logfile=NONE\n")
    shell = statistics.median([shell_baseline(d) for _ in range(3)])
    b = measure("bosun", [BOSUN, "run", "-c", os.path.join(d, "bosun.toml")], fb, env=dict(os.environ, BOSUN_LOG="warn"))
    s = measure("supervisord", ["supervisord", "-n", "-c", os.path.join(d, "supervisord.conf")], fs)
    rows = [
        ("time until all %d run (ms)" % N, "start_ms", "%.1f"),
        ("daemon RSS (KiB)", "rss_kb", "%d"),
        ("daemon PSS (KiB)", "pss_kb", "%d"),
        ("median respawn after SIGKILL (ms)", "respawn_ms", "%.2f"),
        ("CPU ticks in %gs idle" % IDLE, "idle_ticks", "%d"),
        ("time to stop all (ms)", "stop_ms", "%.1f"),
    ]
    print(f"\n{N} services; plain shell starting the same {N} children: {shell:.1f} ms (median of 3)\n")
    print(f"| {'metric':<36} | {'bosun':>10} | {'supervisord':>11} | {'bosun/supervisord':>17} |")
    print(f"|{'-'*38}|{'-'*12}|{'-'*13}|{'-'*19}|")
    for label, k, fmt in rows:
        ratio = (b[k] / s[k]) if s[k] else float("nan")
        print(f"| {label:<36} | {fmt % b[k]:>10} | {fmt % s[k]:>11} | {ratio:>17.3f} |")
    print(f"| {'start vs plain shell (bosun)':<36} | {b['start_ms']/shell:>10.3f} | {s['start_ms']/shell:>11.3f} | {'':>17} |")


if __name__ == "__main__":
    main()
