#!/usr/bin/env python3
"""Helpers of tests/bench/pgstop.sh (run that, not this).

  pgstop.py sample --cgroup PATH --netns PATH --garage-pid N --pid1 N --out FILE
      CPU seconds while a container stops: the container's cgroup (every process in it),
      of which its PID 1 (bosun, or the shell) alone, its slirp4netns (the user-space network every uploaded byte goes through) and the
      Garage server. Polls every 0.1 s until SIGTERM (sent when `podman stop` returned),
      then writes JSON. The cgroup and slirp4netns vanish with the container, so their
      figure is the last sample, at most 0.1 s short.
  pgstop.py manifest FILE
      bytes stored and the item names of a bosun MANIFEST.json.
  pgstop.py table RESULTS.tsv
      the summary table (markdown) of the runs, ratio and goal.
"""

import json
import os
import signal
import statistics
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
GOAL = 0.6  # issue 12: bosun's stop <= 0.6x the docassemble-style sequence


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def cgroup_cpu(path):
    """CPU seconds of a cgroup: v2 cpu.stat, else v1 cpuacct.usage; None when gone."""
    try:
        with open(f"/sys/fs/cgroup{path}/cpu.stat") as f:
            for line in f:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    try:
        with open(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage") as f:
            return int(f.read()) / 1e9
    except (OSError, ValueError):
        return None


def find_slirp(netns):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"slirp4netns") and netns.encode() in args:
            return int(pid)
    return None


def sample(argv):
    opts = dict(zip(argv[::2], argv[1::2]))
    cgroup, out = opts["--cgroup"], opts["--out"]
    garage = int(opts.get("--garage-pid", "0") or 0)
    slirp = find_slirp(opts.get("--netns", "")) if opts.get("--netns") else None
    pid1 = int(opts.get("--pid1", "0") or 0)
    first = {"container": cgroup_cpu(cgroup), "slirp": slirp and proc_cpu(slirp),
             "garage": garage and proc_cpu(garage), "pid1": pid1 and proc_cpu(pid1)}
    last = dict(first)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + 1800
    while not stop and time.monotonic() < deadline:
        for key, value in (("container", cgroup_cpu(cgroup)),
                           ("slirp", slirp and proc_cpu(slirp)),
                           ("pid1", pid1 and proc_cpu(pid1))):
            if value is not None:
                last[key] = value
        time.sleep(0.1)
    if garage:
        last["garage"] = proc_cpu(garage)
    res = {}
    for key in first:
        a, b = first[key], last[key]
        res[key] = round(b - a, 2) if a is not None and b is not None else None
    with open(out, "w") as f:
        json.dump(res, f)


def manifest(path):
    with open(path) as f:
        m = json.load(f)
    items = m.get("items", [])
    print(sum(i.get("stored_size", 0) for i in items), sum(i.get("raw_size", 0) for i in items),
          ",".join(sorted(i["name"] for i in items)))


def fmt_bytes(n):
    n = int(n)
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def table(path):
    rows = {}
    with open(path) as f:
        for line in f:
            r = dict(kv.split("=", 1) for kv in line.rstrip("\n").split("\t"))
            rows.setdefault(r["run"], {})[r["side"]] = r
    print("| run | bosun stop | docassemble-style | ratio | goal | bytes stored: bosun (of raw) / shell "
          "| CPU s bosun: container (PID 1) + slirp4netns + Garage | CPU s shell: container + "
          "slirp4netns + Garage | load 1 min start → end (bosun; shell) |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for run in sorted(rows, key=int):
        b, s = rows[run].get("bosun"), rows[run].get("shell")
        if not b or not s:
            print(f"| {run} | incomplete: {sorted(rows[run])} | | | | | | | |")
            continue
        ratio = float(b["secs"]) / float(s["secs"])
        ratios.append(ratio)
        def cpu(r, pid1):
            own = f" ({r.get('cpu_pid1', '?')})" if pid1 else ""
            return f"{r['cpu_container']}{own} + {r['cpu_slirp']} + {r['cpu_garage']}"
        ok = "" if b["code"] == "0" and s["code"] == "0" else f" (exit {b['code']} / {s['code']})"
        print(f"| {run} | {float(b['secs']):.1f} s | {float(s['secs']):.1f} s | {ratio:.2f}{ok} "
              f"| ≤ {GOAL} | {fmt_bytes(b['stored'])} (of {fmt_bytes(b['raw'])}) / {fmt_bytes(s['stored'])} "
              f"| {cpu(b, True)} "
              f"| {cpu(s, False)} | {b['load0']} → {b['load1']}; {s['load0']} → {s['load1']} |")
    if ratios:
        med = statistics.median(ratios)
        verdict = "met" if med <= GOAL else "MISSED"
        print(f"\nmedian ratio {med:.2f} (goal ≤ {GOAL}): {verdict}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"sample": lambda: sample(args), "manifest": lambda: manifest(args[0]),
     "table": lambda: table(args[0])}[cmd]()


if __name__ == "__main__":
    main()
