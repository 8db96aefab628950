#!/usr/bin/env python3
"""Opens a page in headless Chromium and prints what chosen elements show, twice, some seconds apart.

    Scripts/browser-check.py URL [--wait SECONDS] [--screenshot FILE.png]

Talks the DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON), so
it needs nothing beyond the standard library and Debian's `chromium`. Prints two JSON lines, each
{"clock": ..., "serverTime": ..., "count": ..., "state": ...}, the second `--wait` seconds after the
first, and exits 0; exits 2 if Chromium is missing or does not answer.
"""
import argparse, base64, json, os, shutil, subprocess, sys, time

EXPRESSION = """JSON.stringify({
  clock: document.getElementById('clock')?.textContent,
  serverTime: document.getElementById('clock')?.dataset.serverTime || null,
  count: Number(document.getElementById('count')?.textContent),
  state: document.getElementById('state')?.textContent })"""


class Pipe:
    def __init__(self, to_browser, from_browser):
        self.to_browser, self.from_browser, self.buffer, self.next_id = to_browser, from_browser, b"", 0

    def call(self, method, params=None, session=None, timeout=20):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            chunk = os.read(self.from_browser, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        raise RuntimeError(f"{method}: no answer in {timeout} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--wait", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after opening before the first look")
    parser.add_argument("--screenshot")
    options = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        print("no chromium on PATH", file=sys.stderr)
        return 2
    commands_read, commands_write = os.pipe()
    replies_read, replies_write = os.pipe()
    # Chromium reads commands on fd 3 and writes replies on fd 4.
    def wire():
        os.dup2(commands_read, 3)
        os.dup2(replies_write, 4)
    process = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-pipe", "--user-data-dir=" + os.path.join("/tmp", f"rill-chromium-{os.getpid()}"),
         "about:blank"],
        pass_fds=(3, 4), preexec_fn=wire,
        stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BROWSER_CHECK_VERBOSE") else subprocess.DEVNULL)
    os.close(commands_read)
    os.close(replies_write)
    pipe = Pipe(commands_write, replies_read)
    try:
        target = pipe.call("Target.createTarget", {"url": options.url})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        time.sleep(options.settle)
        for look in range(2):
            if look:
                time.sleep(options.wait)
            value = pipe.call("Runtime.evaluate", {"expression": EXPRESSION, "returnByValue": True}, session)
            print(value["result"]["value"], flush=True)
        if options.screenshot:
            shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session)
            with open(options.screenshot, "wb") as file:
                file.write(base64.b64decode(shot["data"]))
        pipe.call("Browser.close")
    except (RuntimeError, OSError, KeyError) as error:
        print(f"browser-check: {error}", file=sys.stderr)
        return 2
    finally:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(os.path.join("/tmp", f"rill-chromium-{os.getpid()}"), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
