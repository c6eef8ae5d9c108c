"""Drives headless Chromium over the DevTools protocol for tests/ops.rs (through
tests/support/cdp.py).

usage: status_page.py URL TOKEN UNIT SCREENSHOT
Loads the page, records the token prompt, types the token, waits for the boot
timeline, clicks UNIT's name, waits for its log lines, writes a PNG screenshot
to SCREENSHOT and prints one JSON object with what the page shows."""
import base64, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import session  # noqa: E402

url, token, unit, shot = sys.argv[1:5]
page = session(height=1400)
browser, call, js, wait_js, click, fail = page.browser, page.call, page.js, page.wait_js, page.click, page.fail
try:
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
