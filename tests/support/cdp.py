"""A minimal Chromium DevTools client for the browser tests (standard library only:
nothing to install). `session(height)` starts headless Chromium on about:blank and
returns the page's helpers; `tests/support/status_page.py` and tests/control.rs's
page test drive the status page with them."""
import base64, json, os, socket, struct, subprocess, sys, tempfile, time, urllib.request


class Page:
    pass


def session(height=900, seconds=60):
    deadline = time.time() + seconds
    profile = tempfile.mkdtemp(prefix="bosun-chromium-")
    browser = subprocess.Popen([
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,%d" % height, "--user-data-dir=" + profile, "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def fail(msg):
        print(json.dumps({"error": msg}))
        browser.kill()
        sys.exit(1)

    port_file = os.path.join(profile, "DevToolsActivePort")
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if time.time() > deadline or browser.poll() is not None:
            fail("chromium did not open its debugging port")
        time.sleep(0.1)
    port = int(open(port_file).read().split()[0])
    targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
    page = [t for t in targets if t.get("type") == "page"][0]
    ws_path = page["webSocketDebuggerUrl"].split(str(port), 1)[1]

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (ws_path, port, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            fail("websocket handshake failed")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        fail("websocket handshake refused: %r" % head[:200])

    def read_exact(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("devtools closed")
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    def send_frame(opcode, data):
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv_message():
        data = b""
        while True:
            b0, b1 = read_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", read_exact(8))[0]
            payload = read_exact(n)
            op = b0 & 0x0F
            if op == 9:
                send_frame(10, payload)
                continue
            if op == 8:
                raise EOFError("devtools closed the websocket")
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    next_id = [0]
    def call(method, **params):
        next_id[0] += 1
        my = next_id[0]
        send_frame(1, json.dumps({"id": my, "method": method, "params": params}).encode())
        while True:
            m = recv_message()
            if m.get("id") == my:
                if "error" in m:
                    fail("%s: %s" % (method, m["error"]))
                return m.get("result", {})

    def js(expr):
        r = call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    def wait_js(expr, what):
        while time.time() < deadline:
            v = js(expr)
            if v:
                return v
            time.sleep(0.1)
        fail("timed out waiting for " + what + "; page says: " + str(js("document.body.innerText")))

    def click(selector):
        rect = wait_js("(() => { const e = document.querySelector(%s); if (!e) return null; "
                       "e.scrollIntoView({block: 'center', inline: 'center'}); "
                       "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                       % json.dumps(selector), selector)
        for kind in ("mousePressed", "mouseReleased"):
            call("Input.dispatchMouseEvent", type=kind, x=rect[0], y=rect[1], button="left", clickCount=1)

    page = Page()
    page.browser, page.deadline, page.fail = browser, deadline, fail
    page.call, page.js, page.wait_js, page.click = call, js, wait_js, click
    return page
