"""Drives headless Chromium for tests/control.rs: loads the status page, sees the
units, types the token like a user, clicks restart on UNIT and sees its pid change;
prints one JSON object with what it saw.

usage: restart_page.py URL TOKEN UNIT"""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import session  # noqa: E402

url, token, unit = sys.argv[1:4]
page = session(height=900)
browser, call, js, wait_js, click = page.browser, page.call, page.js, page.wait_js, page.click
try:
    call("Page.enable")
    call("Page.navigate", url=url)
    wait_js("document.readyState === 'complete'", "the page to load")
    # Without the token the page asks for it.
    asked = wait_js("document.getElementById('message').textContent.includes('token')", "the token prompt")
    # Type the token like a user, save it.
    click("#token")
    call("Input.insertText", text=token)
    click("#save-token")
    pid_of = "(() => { const c = document.querySelector('tr[data-unit=%s] td.pid'); " \
             "return c && /^[0-9]+$/.test(c.textContent) ? c.textContent : null; })()" % json.dumps(unit)
    before = wait_js(pid_of, "the unit's pid")
    rows = js("[...document.querySelectorAll('#units tr')].map(r => r.dataset.unit + ':' + r.dataset.state)")
    stored = js("localStorage.getItem('bosun.token') === %s" % json.dumps(token))
    click("button[data-action=restart][data-unit=%s]" % json.dumps(unit))
    after = wait_js("(() => { const p = %s; return p && p !== %s ? p : null; })()" % (pid_of, json.dumps(before)),
                    "the pid to change after restart")
    print(json.dumps({"before": before, "after": after, "rows": rows, "stored": stored, "asked": asked,
                      "message": js("document.getElementById('message').textContent")}))
finally:
    browser.kill()
    browser.wait()
