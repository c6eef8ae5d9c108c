#!/usr/bin/env python3
"""Measuring half of tests/bench/snapshot.sh (run that, not this).

One run: bosun backs a payload up into S3 on SIGTERM ("up"), a second bosun with a fresh
state_dir restores it ("down"); `aws s3 cp` moves the same payload up and down. With
--fresh 1 (snapshot.sh's default) each side gets a Garage just restarted with empty meta
and data dirs (`garage.sh fresh`): its up is the first write that Garage sees, its down
reads what that up stored, nothing else; before each timed transfer the script waits
(bounded) until Garage is idle. With --alternate 1 odd runs go bosun first, even runs aws
first. Garage's pid changes with each restart; its CPU is read per transfer from the pid
of that moment.
Prints a table with the targets next to the numbers. Exits non-zero only when a step
fails (bosun exits non-zero, a log line never comes, aws fails, a timeout); a missed
target is reported, not failed.

Timing: bosun's own log timestamps (BOSUN_LOG_FORMAT=json, microseconds):
  up   = from "dumping its data" to "snapshot committed" (dump + compress + hash +
         multipart upload + manifest/LATEST commit);
  down = from "verifying its data" to "loaded" (the verifying pass, then GET + verify +
         decompress + stream into the `load` command's stdin), which is what the unit
         waits for.
aws: wall clock of the whole `aws s3 cp` process, python start-up included (printed
separately so it can be discounted).
Peak RSS: VmHWM of the bosun process, polled every 20 ms from /proc/PID/status until
it exits (VmHWM only grows, so the last sample is the peak up to that moment); for
"down" the value read right at the "loaded" line (the restore's peak, before the
second bosun backs up again on its own SIGTERM).
CPU: utime+stime of bosun (all threads) and of the Garage server over each phase.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")
UP_TARGET = 1.0  # bosun / aws (issue 12)
DOWN_TARGET = 1.5
RSS_TARGET = 64 * 1000 * 1000  # 64 MB


class StepFailed(Exception):
    pass


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def cpu_secs(pid):
    """utime + stime of a process (all threads), seconds; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def parse_ts(s):
    # 2026-11-23T10:19:51.626817Z (tracing-subscriber: microseconds, UTC)
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".", 1)
        s = f"{head}.{frac[:6]:0<6}"
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp()


class Bosun:
    """One bosun process: its JSON log lines in a queue, VmHWM/CPU polled."""

    live = []

    def __init__(self, binary, config, log_path, env):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "run", "-c", config],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a ^C on the terminal must not reach it
        )
        Bosun.live.append(self)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        self.hwm_kib = 0
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.log.write(line)
            self.log.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a unit's own output, not a bosun log line
            if isinstance(ev, dict) and "message" in ev:
                ev["_mono"] = time.monotonic()
                self.lines.put(ev)
        self.lines.put(None)  # EOF

    def _sample(self):
        while not self.done.is_set():
            self.sample()
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)

    def sample(self):
        v = status_kib(self.pid, "VmHWM")
        if v is not None and v > self.hwm_kib:
            self.hwm_kib = v
        return self.hwm_kib

    def cpu(self):
        return cpu_secs(self.pid)

    def wait_for(self, what, pred, timeout):
        """The first log event matching pred; StepFailed on timeout or early exit."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepFailed(f"bosun {self.pid}: no '{what}' line within {timeout:.0f}s (log: {self.log.name})")
            try:
                ev = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if ev is None:
                self.proc.wait()
                raise StepFailed(
                    f"bosun {self.pid} exited ({self.proc.returncode}) before '{what}' (log: {self.log.name})")
            if ev.get("level") == "ERROR":
                print(f"  bosun error: {ev['message']}", file=sys.stderr)
            if pred(ev["message"]):
                return ev

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"bosun {self.pid} did not exit within {timeout:.0f}s (log: {self.log.name})")
        self.done.set()
        Bosun.live.remove(self)
        if rc != 0:
            raise StepFailed(f"bosun {self.pid} exited with code {rc} (log: {self.log.name})")
        return rc

    def kill(self):
        """Abort: SIGKILL bosun and everything under it (no backup on the way out)."""
        if self.proc.poll() is None:
            kids = descendants(self.pid)
            for p in [self.pid] + kids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.done.set()


def write_config(path, work, name, payload, store):
    state = os.path.join(work, name)
    os.makedirs(state, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""[bosun]
state_dir = "{state}/state"
control_socket = "{state}/run/ctl.sock"
stop_budget = "3600s"

[service.data]
run = "exec sleep 100000"
start_secs = "100ms"

[service.data.backup]
dump = "cat {payload}"
load = "cat > /dev/null"
timeout = "3000s"

[snapshot]
store = "{store}"
s3_endpoint = "${{S3ENDPOINTURL:-}}"
s3_region = "${{S3REGION:-garage}}"
""")


def is_msg(prefix):
    return lambda m: m.startswith(prefix)


def garage_cpu(pid):
    return cpu_secs(pid) if pid else None


def garage_settle(args, window=0.5, idle=0.02, limit=30.0):
    """Wait until Garage spends < idle CPU-s in a window (at most limit s): the seconds
    waited, or None when it never went idle (then the transfer starts anyway)."""
    if not args.garage_pid:
        return None
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        c0 = cpu_secs(args.garage_pid)
        time.sleep(window)
        c1 = cpu_secs(args.garage_pid)
        if c0 is None or c1 is None:
            raise StepFailed(f"Garage (pid {args.garage_pid}) exited (log: {args.garage_dir}/garage.log)")
        if c1 - c0 < idle:
            return time.monotonic() - t0
    print(f"  note: Garage (pid {args.garage_pid}) still busy after {limit:.0f}s; going on", file=sys.stderr)
    return None


def garage_fresh(args):
    """`garage.sh fresh DIR` (stop, empty meta and data, start), then wait for it to idle.
    Points args.garage_pid at the new server; returns {pid, start, settle} (seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([args.garage_sh, "fresh", args.garage_dir], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"garage.sh fresh {args.garage_dir}: no end within 180s")
    if p.returncode != 0:
        raise StepFailed(f"garage.sh fresh {args.garage_dir} failed ({p.returncode}): "
                         f"{p.stdout.decode(errors='replace')[-2000:]}")
    start = time.monotonic() - t0
    try:
        with open(os.path.join(args.garage_dir, "garage.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError) as e:
        raise StepFailed(f"no pid of the restarted Garage in {args.garage_dir}/garage.pid: {e}")
    if cpu_secs(pid) is None:
        raise StepFailed(f"the restarted Garage (pid {pid}) is not running (log: {args.garage_dir}/garage.log)")
    args.garage_pid = pid
    return {"pid": pid, "start": start, "settle": garage_settle(args)}


def garage_before(args):
    """Before a side's down: same Garage as its up, idle again (fresh mode only)."""
    if not args.fresh:
        return None
    return {"pid": args.garage_pid, "start": None, "settle": garage_settle(args)}


def diff(a, b):
    return None if a is None or b is None else b - a


def bosun_up(args, env, store):
    """Start bosun (no snapshot yet), SIGTERM it, time the dump to the commit."""
    cfg = os.path.join(args.work, "up.toml")
    write_config(cfg, args.work, "up", args.payload, store)
    b = Bosun(args.bosun, cfg, os.path.join(args.work, "up.log"), env)
    b.wait_for("boot complete", is_msg("boot complete"), 60)
    g0, c0 = garage_cpu(args.garage_pid), b.cpu()
    t0 = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    start = b.wait_for("dumping its data", is_msg("dumping its data"), 60)
    done = b.wait_for("backing up data: done", is_msg("backing up data: done"), args.timeout)
    commit = b.wait_for("snapshot committed", lambda m: m == "snapshot committed", 120)
    g1, c1 = garage_cpu(args.garage_pid), b.cpu()
    b.wait_exit(120)
    whole = time.monotonic() - t0
    secs = parse_ts(commit["timestamp"]) - parse_ts(start["timestamp"])
    raw = int(done["bytes"])
    if raw != args.bytes:
        raise StepFailed(f"bosun backed up {raw} bytes, the payload has {args.bytes}")
    return {
        "secs": secs,
        "whole": whole,
        "mib_s": raw / MIB / secs,
        "bosun_rate": float(done["rate_mib_s"]),
        "stored": int(done["stored_bytes"]),
        "rss_kib": b.hwm_kib,
        "cpu": diff(c0, c1),
        "garage_cpu": diff(g0, g1),
    }


def bosun_down(args, env, store):
    """Fresh state_dir, same store: time the load; then SIGTERM (it backs up again)."""
    cfg = os.path.join(args.work, "down.toml")
    write_config(cfg, args.work, "down", args.payload, store)
    b = Bosun(args.bosun, cfg, os.path.join(args.work, "down.log"), env)
    b.wait_for("restoring snapshot", is_msg("restoring snapshot"), 120)
    g0, c0 = garage_cpu(args.garage_pid), b.cpu()
    vstart = b.wait_for("verifying its data", is_msg("verifying its data"), 120)
    start = b.wait_for("loading its data", is_msg("loading its data"), args.timeout)
    verified = b.wait_for("restoring data: verified", is_msg("restoring data: verified"), args.timeout)
    loaded = b.wait_for("loaded", is_msg("loaded "), 120)
    rss_restore = b.sample()
    g1, c1 = garage_cpu(args.garage_pid), b.cpu()
    b.wait_for("boot complete", is_msg("boot complete"), 60)
    raw = int(verified["bytes"])
    if raw != args.bytes:
        raise StepFailed(f"bosun restored {raw} bytes, the payload has {args.bytes}")
    secs = parse_ts(loaded["timestamp"]) - parse_ts(vstart["timestamp"])
    out = {
        "secs": secs,
        "verify_secs": parse_ts(start["timestamp"]) - parse_ts(vstart["timestamp"]),
        "load_secs": parse_ts(loaded["timestamp"]) - parse_ts(start["timestamp"]),
        "mib_s": raw / MIB / secs,
        "rss_kib": rss_restore,
        "cpu": diff(c0, c1),
        "garage_cpu": diff(g0, g1),
    }
    # Its own stop backs the payload up again: a second "up" sample, after a restore.
    b.proc.send_signal(signal.SIGTERM)
    s2 = b.wait_for("dumping its data", is_msg("dumping its data"), 60)
    b.wait_for("backing up data: done", is_msg("backing up data: done"), args.timeout)
    c2 = b.wait_for("snapshot committed", lambda m: m == "snapshot committed", 120)
    b.wait_exit(120)
    out["up2_mib_s"] = raw / MIB / (parse_ts(c2["timestamp"]) - parse_ts(s2["timestamp"]))
    out["rss_whole_kib"] = b.hwm_kib
    return out


def run_timed(argv, env, timeout):
    """Wall seconds and CPU seconds (children rusage) of one command; StepFailed on error."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{' '.join(argv)}: no end within {timeout:.0f}s")
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise StepFailed(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu


def aws_cp(args, env, direction):
    """One timed `aws s3 cp` of the payload, up (from the file) or down (to /dev/null)."""
    url = f"s3://{args.bucket}/{args.prefix}/aws-payload"
    common = ["--endpoint-url", env["S3ENDPOINTURL"], "--region", env.get("S3REGION", "garage"),
              "--only-show-errors"]
    argv = ["aws", "s3", "cp"] + ([args.payload, url] if direction == "up" else [url, "/dev/null"]) + common
    g0 = garage_cpu(args.garage_pid)
    wall, cpu = run_timed(argv, env, args.timeout)
    return {"secs": wall, "mib_s": args.bytes / MIB / wall, "cpu": cpu,
            "garage_cpu": diff(g0, garage_cpu(args.garage_pid))}


def aws_side(args, env, i):
    """aws's up and down of one run; a fresh Garage first in fresh mode."""
    startup = statistics.median(run_timed(["aws", "--version"], env, 60)[0] for _ in range(3))
    g_up = garage_fresh(args) if args.fresh else None
    print(f"[3/4] run {i}: aws s3 cp up and down (to /dev/null){garage_note(g_up)}", flush=True)
    up = aws_cp(args, env, "up")
    up["garage"] = g_up
    g_down = garage_before(args)
    down = aws_cp(args, env, "down")
    down["garage"] = g_down
    print(f"      up {up['mib_s']:.1f} MiB/s, down {down['mib_s']:.1f} MiB/s", flush=True)
    return {"startup": startup, "up": up, "down": down}


def bosun_side(args, env, i, store, size):
    """bosun's up and down of one run; a fresh Garage first in fresh mode."""
    g_up = garage_fresh(args) if args.fresh else None
    print(f"[1/4] run {i}: bosun up: dump {size} into {store} on SIGTERM{garage_note(g_up)}", flush=True)
    up = bosun_up(args, env, store)
    up["garage"] = g_up
    print(f"      {up['mib_s']:.1f} MiB/s ({up['secs']:.1f}s; whole stop {up['whole']:.1f}s)", flush=True)
    print(f"[2/4] run {i}: bosun down: fresh state_dir, verify, load; then its stop backs up again", flush=True)
    g_down = garage_before(args)
    down = bosun_down(args, env, store)
    down["garage"] = g_down
    print(f"      {down['mib_s']:.1f} MiB/s ({down['secs']:.1f}s = verify {down['verify_secs']:.1f}s "
          f"+ load {down['load_secs']:.1f}s); second backup {down['up2_mib_s']:.1f} MiB/s", flush=True)
    return up, down


def garage_note(g):
    if g is None:
        return ""
    return f" (fresh Garage pid {g['pid']}, started in {g['start']:.1f}s, idle after {fmt(g['settle'], '.1f', '-')}s)"


def garage_detail(g):
    if g is None:
        return ""
    start = "" if g["start"] is None else f"fresh, started in {g['start']:.1f}s, "
    return f"; Garage pid {g['pid']} ({start}idle after {fmt(g['settle'], '.1f', 'never')}s)"


def reference(args, env):
    """Single-core costs of the work bosun does per byte, as the stock tools do it."""
    zst = os.path.join(args.work, "payload.zst")
    # openssl uses SHA-NI where the CPU has it (as the sha2 crate does); coreutils may not.
    if shutil.which("openssl"):
        sha_label, sha_cmd = "openssl sha256", "openssl dgst -sha256"
    else:
        sha_label, sha_cmd = "sha256sum", "sha256sum"
    rows = []
    for label, cmd in (
        (sha_label, f"{sha_cmd} {args.payload} >/dev/null"),
        ("zstd -3 -T1 compress", f"zstd -q -3 -T1 -c {args.payload} >{zst}"),
        ("zstd -d decompress", f"zstd -q -d -c {zst} >/dev/null"),
        ("cat | cat (pipe)", f"cat {args.payload} | cat >/dev/null"),
    ):
        wall, cpu = run_timed(["sh", "-c", cmd], env, args.timeout)
        rows.append((label, args.bytes / MIB / wall, cpu))
    os.unlink(zst)
    # What one plain GET stream from this Garage delivers (no hashing, no decompression):
    # the object aws uploaded in step 3 (in fresh mode: put again into a fresh Garage, as
    # before the downs). curl >= 7.75 signs it.
    if shutil.which("curl"):
        if args.fresh:
            garage_fresh(args)
            aws_cp(args, env, "up")
            garage_settle(args)
        url = f"{env['S3ENDPOINTURL']}/{args.bucket}/{args.prefix}/aws-payload"
        # The key goes in a file, not on the command line.
        cfg = os.path.join(args.work, "curl.cfg")
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f'user = "{env["AWS_ACCESS_KEY_ID"]}:{env["AWS_SECRET_ACCESS_KEY"]}"\n')
        argv = ["curl", "-sSf", "-K", cfg, "-o", "/dev/null",
                "--aws-sigv4", f"aws:amz:{env.get('S3REGION', 'garage')}:s3",
                "-H", "x-amz-content-sha256: " + hashlib.sha256(b"").hexdigest(), url]
        try:
            wall, cpu = run_timed(argv, env, args.timeout)
            rows.append(("curl, one GET stream", args.bytes / MIB / wall, cpu))
        except StepFailed as e:  # an old curl: a reference, not a step
            print(f"  (no curl reference: {str(e)[:300]})", file=sys.stderr)
        os.unlink(cfg)
    return rows


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bosun", required=True)
    ap.add_argument("--payload", required=True)
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--garage-pid", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--reference", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--fresh", type=int, default=0, help="restart Garage empty before each side (needs --garage-dir)")
    ap.add_argument("--alternate", type=int, default=0, help="even runs go aws first")
    ap.add_argument("--garage-dir", default="")
    ap.add_argument("--garage-sh", default="tests/support/garage.sh")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.garage_pid and cpu_secs(args.garage_pid) is None:
        args.garage_pid = 0
    if args.fresh and not args.garage_dir:
        ap.error("--fresh 1 needs --garage-dir")
    env = dict(os.environ)
    env["BOSUN_LOG_FORMAT"] = "json"
    env.setdefault("BOSUN_LOG", "info")
    store = f"s3://{args.bucket}/{args.prefix}/bosun"
    size = f"{args.bytes / MIB:.0f} MiB"
    try:
        runs = []
        for i in range(1, max(1, args.runs) + 1):
            run_store = f"{store}-{i}"
            aws_first = bool(args.alternate) and i % 2 == 0
            if aws_first:
                a = aws_side(args, env, i)
                up, down = bosun_side(args, env, i, run_store, size)
            else:
                up, down = bosun_side(args, env, i, run_store, size)
                a = aws_side(args, env, i)
            runs.append((up, down, a, os.getloadavg()[0], "aws" if aws_first else "bosun"))
        ref = None
        if args.reference:
            print("[4/4] reference: stock tools on the same payload, one GET stream with curl", flush=True)
            ref = reference(args, env)
        else:
            print("[4/4] reference: skipped (BENCH_REFERENCE=0)", flush=True)
    except StepFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        for b in list(Bosun.live):
            b.kill()

    rss_target_mib = RSS_TARGET / MIB
    print()
    print(f"bosun snapshot vs aws s3 cp, {args.bytes} bytes ({size}) from /dev/urandom, Garage at "
          f"{env['S3ENDPOINTURL']}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    if args.fresh:
        print("Garage: restarted empty before each side's up; the down reads that up's object, nothing else "
              "written in between; Garage idle before each transfer")
    else:
        print("Garage: one server for all transfers, its data kept (BENCH_FRESH_GARAGE=0 or BOSUN_GARAGE_ENV)")
    print()
    hdr = (f"{'run':<4} {'first':<6} {'direction':<10} {'bosun MiB/s':>11} {'aws MiB/s':>10} {'bosun/aws':>9} "
           f"{'target':>7} {'bosun peak RSS MiB':>18} {'CPU s bosun/aws/garage(b)/garage(a)':>36} {'load':>5}")
    print(hdr)
    print("-" * len(hdr))
    ratios = {"up": [], "down": []}
    for i, (up, down, a, load, first) in enumerate(runs, 1):
        for name, x, target in (("up", up, UP_TARGET), ("down", down, DOWN_TARGET)):
            bv, av = x["mib_s"], a[name]["mib_s"]
            ratio = bv / av
            ratios[name].append(ratio)
            rss_b = x["rss_kib"] * 1024
            ok = ("ok" if ratio >= target else "MISSED") + ", RSS " + ("ok" if rss_b <= RSS_TARGET else "MISSED")
            cpu = (f"{fmt(x['cpu'], '.1f')}/{a[name]['cpu']:.1f}/"
                   f"{fmt(x['garage_cpu'], '.1f')}/{fmt(a[name]['garage_cpu'], '.1f')}")
            print(f"{i:<4} {first:<6} {name:<10} {bv:>11.1f} {av:>10.1f} {ratio:>8.2f}x {'>=' + format(target, '.1f') + 'x':>7} "
                  f"{rss_b / MIB:>18.1f} {cpu:>36} {load:>5.2f}   {ok}")
    print()
    print(f"median bosun/aws: up {statistics.median(ratios['up']):.2f}x (target >= {UP_TARGET}x), "
          f"down {statistics.median(ratios['down']):.2f}x (target >= {DOWN_TARGET}x); peak RSS target "
          f"<= {rss_target_mib:.1f} MiB (64 MB)")
    print("  up: 'dumping its data' -> 'snapshot committed' (the whole stop, SIGTERM -> exit, below); "
          "down: 'verifying its data' -> 'loaded' (both passes: verify, then load)")
    print("  CPU s: bosun's own (/proc/PID/stat), aws's (rusage), Garage's during bosun's / aws's transfer "
          "(the pid serving it)")
    print("  first: the side that ran first in that run")
    print()
    print("details")
    for i, (up, down, a, load, first) in enumerate(runs, 1):
        print(f"  run {i} bosun up   : {up['secs']:.2f}s dump -> commit, whole stop (SIGTERM -> exit) "
              f"{up['whole']:.2f}s; bosun's own rate line {up['bosun_rate']:.1f} MiB/s; stored {up['stored']} bytes"
              f"{garage_detail(up['garage'])}")
        print(f"  run {i} bosun down : {down['secs']:.2f}s = verify pass {down['verify_secs']:.2f}s + load pass "
              f"{down['load_secs']:.2f}s{garage_detail(down['garage'])}")
        print(f"  run {i} bosun up #2: {down['up2_mib_s']:.1f} MiB/s (the restoring bosun's own stop); its peak RSS "
              f"over the whole run {down['rss_whole_kib'] / 1024:.1f} MiB")
        for d in ("up", "down"):
            x = a[d]
            print(f"  run {i} aws {d:<5}  : {x['secs']:.2f}s wall (python start-up ~{a['startup']:.2f}s of it)"
                  f"{garage_detail(x['garage'])}")
    if ref:
        print("  reference (stock tools on the same payload, from page cache; curl from Garage):")
        for label, mib_s, cpu in ref:
            print(f"    {label:<22} {mib_s:>8.1f} MiB/s  (CPU {cpu:.1f}s)")
    print(f"  logs and configs: {args.work} (removed on success unless BENCH_KEEP=1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
