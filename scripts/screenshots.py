#!/usr/bin/env python3
"""Screenshots of the web app as a user sees them, for docs/screenshots/ and for looking at a
page while building it: Debian's Chromium, headless, driven over WebDriver by chromedriver (no
Python packages needed).

    scripts/screenshots.py BASE_URL USER PASSWORD LANG OUT.png PATH [WIDTH]

signs in as USER, switches the UI to LANG (ru or en), opens PATH and saves the whole page.
With FILES set (paths separated by newlines), they are chosen in the page's file input first
(the upload and import pages), and the page is saved once they are sent."""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def call(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")["value"]


def main():
    base, user, password, lang, out, path = sys.argv[1:7]
    width = int(sys.argv[7]) if len(sys.argv) > 7 else 1366
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wd = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(wd + "/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},900", "--hide-scrollbars", f"--lang={lang}"]}}}}
        sid = call(wd + "/session", "POST", caps)["sessionId"]
        se = f"{wd}/session/{sid}"
        call(se + "/url", "POST", {"url": base + "/login"})
        call(se + "/execute/sync", "POST", {"script": """
            document.getElementById('username').value = arguments[0];
            document.getElementById('password').value = arguments[1];
            document.querySelector('form.stack').submit();""", "args": [user, password]})
        time.sleep(1.5)
        call(se + "/url", "POST", {"url": base + path})
        call(se + "/execute/sync", "POST", {"script": """
            const b = document.querySelector(".lang-switch button[value='" + arguments[0] + "']");
            if (b && b.getAttribute('aria-pressed') !== 'true') b.click();""", "args": [lang]})
        time.sleep(1.5)
        if os.environ.get("FILES"):
            el = call(se + "/element", "POST", {"using": "css selector", "value": "input[type=file]"})
            eid = list(el.values())[0]
            call(f"{se}/element/{eid}/value", "POST", {"text": os.environ["FILES"]})
            time.sleep(4)
        height = call(se + "/execute/sync", "POST", {"script": "return document.documentElement.scrollHeight", "args": []})
        call(se + "/window/rect", "POST", {"width": width, "height": min(int(height) + 120, 12000)})
        time.sleep(0.5)
        png = call(se + "/screenshot")
        with open(out, "wb") as f:
            f.write(base64.b64decode(png))
        call(se, "DELETE")
    finally:
        driver.kill()


if __name__ == "__main__":
    main()
