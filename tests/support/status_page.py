"""Drives headless Chromium over the DevTools protocol for tests/page.rs (a
minimal WebSocket client in the standard library: nothing to install).

usage: status_page.py URL TOKEN UNIT SCREENSHOT
Loads the page, records the token prompt, types the token, waits for the boot
timeline, clicks UNIT's name, waits for its log lines, writes a PNG screenshot
to SCREENSHOT and prints one JSON object with what the page shows."""
import base64, json, os, socket, struct, subprocess, sys, tempfile, time, urllib.request

url, token, unit, shot = sys.argv[1:5]
deadline = time.time() + 60
profile = tempfile.mkdtemp(prefix="bosun-chromium-")
browser = subprocess.Popen([
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1400", "--user-data-dir=" + profile, "--remote-debugging-port=0", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def fail(msg):
    print(json.dumps({"error": msg}))
    browser.kill()
    sys.exit(1)

try:
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
        global buf
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

    call("Page.enable")
    call("Page.navigate", url=url)
    wait_js("document.readyState === 'complete'", "the page to load")
    prompt = wait_js("(() => { const t = document.getElementById('message').textContent; "
                     "return t.includes('token') ? t : null; })()", "the token prompt")
    bars_before = js("document.querySelectorAll('#timeline .tl-row').length")
    click("#token")
    call("Input.insertText", text=token)
    click("#save-token")
    # Every unit ready: one finished bar each.
    wait_js("document.querySelectorAll('#timeline .tl-row .tl-ready').length >= 4", "the timeline's ready bars")
    wait_js("document.querySelector('#restarts .rs-row') !== null", "the restarts strip")
    timeline = js("[...document.querySelectorAll('#timeline .tl-row')].map(r => ({unit: r.dataset.unit, "
                  "bars: [...r.querySelectorAll('.tl-track div')].map(d => d.className), "
                  "text: r.querySelector('.tl-text').textContent}))")
    click("button.unit-link[data-log-unit=%s]" % json.dumps(unit))
    log = wait_js("(() => { const p = document.getElementById('log'); "
                  "return p.dataset.unit === %s && p.children.length ? [...p.children].map(l => l.textContent) : null; })()"
                  % json.dumps(unit), "the unit's log lines")
    snapshots = wait_js("(() => { const l = document.getElementById('snapshot-last'); "
                        "return l && l.textContent.includes('ok') ? [l.textContent, document.getElementById('snapshot-next').textContent] : null; })()",
                        "the last snapshot")
    restarts = js("[...document.querySelectorAll('#restarts .rs-row')].map(r => ({unit: r.dataset.unit, "
                  "ticks: r.querySelectorAll('.rs-tick').length, text: r.querySelector('.rs-text').textContent}))")
    # The units table's sampled usage: RSS of a running unit's tree (bosun reads /proc
    # for the page's status request).
    usage = wait_js("(() => { const r = document.querySelector('#units tr[data-unit=\"web\"] td.rss'); "
                    "return r && r.textContent.includes('iB') ? r.textContent : null; })()",
                    "web's rss cell")
    png = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
    with open(shot, "wb") as f:
        f.write(base64.b64decode(png))
    print(json.dumps({"prompt": prompt, "bars_before_token": bars_before, "timeline": timeline,
                      "log": log, "snapshots": snapshots, "restarts": restarts,
                      "web_rss": usage}))
finally:
    browser.kill()
    browser.wait()
