#!/usr/bin/env python3
"""notes: the example app of docker/example, small but real.

One file, several programs (the first argument picks one), so that the image holds
one app and bosun.toml decides what runs where, the way docassemble's one image runs
uwsgi, celery and cron from the same code:

  notes.py web            HTTP on $PORT (8080): POST /notes, GET /notes, GET /stats, GET /health
  notes.py worker         pops note ids from the Redis list `jobs`, counts words into PostgreSQL
  notes.py tick           one tick, then exit: a row in `ticks` (with this host's name),
                          `last_tick` in Redis; bosun's `schedule` runs it every minute
  notes.py migrate        creates the tables (idempotent); the app tier runs it before web/worker/cron
  notes.py redis-dump     every Redis key as RESP `RESTORE ... REPLACE` commands on stdout:
                          bosun streams that into the snapshot, and feeds it back to
                          `redis-cli --pipe` on restore
  notes.py client ...     a tiny HTTP client for tests and humans (post TEXT | list | stats | wait-words N)

PostgreSQL through psycopg2 (Debian's python3-psycopg2), Redis through a 40-line RESP
client over a socket (no extra package). Settings from the environment: DBHOST
(localhost), DBPORT (5432), DBNAME (notes), DBUSER (notes), DBPASSWORD (notes),
REDIS_HOST (localhost), REDIS_PORT (6379), PORT (8080).

Every long-running program stops cleanly on SIGTERM (finishes the request or job in
hand, then exits 0): that is what lets bosun stop the container quickly and in order.
"""

import json
import os
import pwd
import signal
import socket
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = threading.Event()


def on_term(signum, frame):
    STOP.set()


def log(*args):
    print(*args, flush=True)


# ----------------------------------------------------------------------------- Redis


class Redis:
    """The few Redis commands the app needs, over RESP. Binary-safe (DUMP payloads)."""

    def __init__(self, host=None, port=None, timeout=10.0):
        host = host or os.environ.get("REDIS_HOST", "localhost")
        port = int(port or os.environ.get("REDIS_PORT", "6379"))
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("redis: unexpected reply %r" % line)


# ----------------------------------------------------------------------------- PostgreSQL


def db():
    import psycopg2  # imported here: `redis-dump` and `client` run without it

    return psycopg2.connect(
        host=os.environ.get("DBHOST", "localhost"),
        port=int(os.environ.get("DBPORT", "5432")),
        dbname=os.environ.get("DBNAME", "notes"),
        user=os.environ.get("DBUSER", "notes"),
        password=os.environ.get("DBPASSWORD", "notes"),
        connect_timeout=10,
    )


@contextmanager
def cursor():
    """A cursor in one transaction (committed on success) on a connection closed after."""
    conn = db()
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id      serial PRIMARY KEY,
    body    text NOT NULL,
    words   integer,                      -- filled in by the worker
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ticks (
    id serial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ticks ADD COLUMN IF NOT EXISTS host text;   -- which container ticked
"""


def migrate():
    with cursor() as cur:
        # Several app containers boot at once: CREATE TABLE IF NOT EXISTS is not safe
        # against itself (two of them race on pg_type), so they take turns.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('notes migrate'))")
        cur.execute(SCHEMA)
    log("migrate: schema is up to date")
    return 0


# ----------------------------------------------------------------------------- web


class Handler(BaseHTTPRequestHandler):
    server_version = "notes/1"

    def log_message(self, fmt, *args):  # one line per request on stdout (bosun prefixes it)
        log("%s %s" % (self.address_string(), fmt % args))

    def send(self, code, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            if self.path == "/health":
                with cursor() as cur:
                    cur.execute("SELECT 1")
                r = Redis(timeout=5)
                r.call("PING")
                r.close()
                return self.send(200, {"status": "ok"})
            if self.path == "/notes":
                with cursor() as cur:
                    cur.execute("SELECT id, body, words, created::text FROM notes ORDER BY id")
                    rows = [dict(zip(("id", "body", "words", "created"), row)) for row in cur.fetchall()]
                return self.send(200, rows)
            if self.path == "/stats":
                with cursor() as cur:
                    cur.execute("SELECT count(*), count(words) FROM notes")
                    notes, processed = cur.fetchone()
                    cur.execute("SELECT count(*) FROM ticks")
                    (ticks,) = cur.fetchone()
                    cur.execute("SELECT coalesce(host, ''), count(*) FROM ticks GROUP BY 1 ORDER BY 1")
                    tick_hosts = dict(cur.fetchall())
                r = Redis(timeout=5)
                posted = r.call("GET", "notes:posted")
                last_tick = r.call("GET", "last_tick")
                queued = r.call("LLEN", "jobs")
                r.close()
                return self.send(200, {
                    "notes": notes,
                    "processed": processed,
                    "ticks": ticks,
                    "tick_hosts": tick_hosts,
                    "posted": int(posted) if posted else 0,
                    "queued": queued,
                    "last_tick": last_tick.decode() if last_tick else None,
                })
            return self.send(404, {"error": "not found"})
        except Exception as e:  # report, do not die: bosun's health check decides
            return self.send(503, {"error": str(e)})

    def do_POST(self):
        if self.path != "/notes":
            return self.send(404, {"error": "not found"})
        try:
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode("utf-8", "replace").strip()
            if not body:
                return self.send(400, {"error": "empty note"})
            with cursor() as cur:
                cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", (body,))
                (nid,) = cur.fetchone()
            r = Redis(timeout=5)
            r.call("LPUSH", "jobs", nid)
            r.call("INCR", "notes:posted")
            r.close()
            return self.send(201, {"id": nid})
        except Exception as e:
            return self.send(503, {"error": str(e)})


def web():
    port = int(os.environ.get("PORT", "8080"))
    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.daemon_threads = True
    # serve_forever in a thread, so that the main thread can wait for SIGTERM and then
    # call shutdown(): requests in hand finish, the socket closes, exit 0.
    # (It checks for shutdown() every poll_interval: 0.1 s, not the default 0.5 s,
    # is how long a stop waits for it.)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    log("web: listening on 0.0.0.0:%d" % port)
    STOP.wait()
    log("web: SIGTERM, finishing requests")
    srv.shutdown()
    srv.server_close()
    return 0


# ----------------------------------------------------------------------------- worker


def worker():
    log("worker: waiting for jobs on redis list 'jobs'")
    r = None
    while not STOP.is_set():
        try:
            if r is None:
                r = Redis(timeout=10)
            # A short block (Redis >= 6 takes a fraction): SIGTERM is noticed within
            # 0.2 s, and a job popped is never dropped (no exception can cut between
            # the pop and the work).
            item = r.call("BRPOP", "jobs", "0.2")
            if item is None:
                continue
            nid = int(item[1])
            with cursor() as cur:
                cur.execute("SELECT body FROM notes WHERE id = %s", (nid,))
                row = cur.fetchone()
                if row is not None:
                    cur.execute("UPDATE notes SET words = %s WHERE id = %s", (len(row[0].split()), nid))
            log("worker: note %d done" % nid)
        except Exception as e:
            log("worker: %s (retrying in 1 s)" % e)
            if r is not None:
                r.close()
                r = None
            STOP.wait(1)
    log("worker: SIGTERM, stopped between jobs")
    return 0


# ----------------------------------------------------------------------------- cron


def tick():
    """One tick, then exit 0 (1 when it failed): what bosun's `schedule` runs.
    No loop and no daemon: bosun's timer is the cron, and in a fleet only the
    container holding the lease of the `cron` singleton runs it."""
    host = socket.gethostname()
    try:
        with cursor() as cur:
            cur.execute("INSERT INTO ticks (host) VALUES (%s) RETURNING at::text", (host,))
            (at,) = cur.fetchone()
        r = Redis(timeout=5)
        r.call("SET", "last_tick", at)
        r.close()
    except Exception as e:
        log("tick failed: %s" % e)
        return 1
    log("tick: %s on %s as %s" % (at, host, pwd.getpwuid(os.getuid()).pw_name))
    return 0


# ----------------------------------------------------------------------------- backup


def redis_dump():
    """Stream every key as `RESTORE key ttl payload REPLACE` (RESP) on stdout.

    Keys expiring meanwhile are skipped; the output fed to `redis-cli --pipe` rebuilds
    the data set. Nothing is written to the container's disk."""
    r = Redis(host=os.environ.get("REDIS_DUMP_HOST", "127.0.0.1"))
    out = sys.stdout.buffer
    cursor, keys = b"0", 0
    while True:
        cursor, batch = r.call("SCAN", cursor, "COUNT", 1000)
        for key in batch:
            pttl = r.call("PTTL", key)
            payload = r.call("DUMP", key)
            if pttl == -2 or payload is None:
                continue
            out.write(Redis.encode(b"RESTORE", key, max(pttl, 0), payload, b"REPLACE"))
            keys += 1
        if cursor == b"0":
            break
    out.flush()
    print("redis-dump: %d keys" % keys, file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- client


def client(args):
    base = os.environ.get("NOTES_URL", "http://127.0.0.1:%s" % os.environ.get("PORT", "8080"))

    def call(method, path, data=None):
        req = urllib.request.Request(base + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    if not args:
        print("usage: notes.py client post TEXT | list | stats | wait-words N [SECONDS]", file=sys.stderr)
        return 2
    cmd = args[0]
    if cmd == "post":
        print(json.dumps(call("POST", "/notes", " ".join(args[1:]).encode())))
    elif cmd == "list":
        print(json.dumps(call("GET", "/notes")))
    elif cmd == "stats":
        print(json.dumps(call("GET", "/stats")))
    elif cmd == "wait-words":  # until the worker processed N notes (bounded)
        want, limit = int(args[1]), float(args[2] if len(args) > 2 else 30)
        deadline = time.monotonic() + limit
        while True:
            s = call("GET", "/stats")
            if s["processed"] >= want:
                print(json.dumps(s))
                return 0
            if time.monotonic() > deadline:
                print(json.dumps(s))
                return 1
            time.sleep(0.2)
    else:
        print("client: unknown command %r" % cmd, file=sys.stderr)
        return 2
    return 0


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    progs = {
        "web": web,
        "worker": worker,
        "tick": tick,
        "migrate": migrate,
        "redis-dump": redis_dump,
    }
    if len(argv) >= 2 and argv[1] == "client":
        return client(argv[2:])
    if len(argv) != 2 or argv[1] not in progs:
        print(__doc__, file=sys.stderr)
        return 2
    return progs[argv[1]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
