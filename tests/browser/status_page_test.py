#!/usr/bin/env python3
"""Headless Chromium watches the live status page on the metrics listener.

    python3 tests/browser/status_page_test.py --build-dir build [--timeout 100] [--keep-temp]

Starts build/stickyproxy with a config written here (four build/test-worker workers on Unix
sockets, the proxy and its metrics listener on kernel-chosen loopback ports), loads
http://127.0.0.1:<metrics port>/ in Chromium over the DevTools pipe (browser_support.py), and:

  1. waits until the page shows four workers, each ready, with a sparkline;
  2. sends 200 GET /whoami through the proxy, each with its own session cookie, from a thread;
  3. waits until the page's numbers move: a worker's requests total grows and its requests/s is
     above zero, and the totals the page shows add up to at least the requests sent;
  4. drains w2 under live traffic with the operator's command, `stickyproxy ctl -c FILE drain w2
     wait 60` (routing.drain_idle is 2 s here): while new sessions keep arriving and the sessions
     pinned to w2 keep using it for a while, the page shows w2 draining; no new session reaches
     w2 once it does, w2's own sessions still do; they leave, the page shows w2 drained, ctl
     answers "w2 drained" with exit 0, and not one request failed; `ctl ready w2` brings it back,
     and the page shows that too;
  5. checks that the page issued no write (only GETs of / and /status.json).

Any JavaScript exception, console.error or browser log error fails the test. Every process
started here is stopped by pid and the temp dir removed. Exit status 0 on success, 1 on
failure, 2 on a usage or environment problem. Python standard library only.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

from browser_support import (RoutingSecret, TestFailure, begin_run, find_chromium, log, open_page,
                             save_screenshot, start_proxy, tail, tear_down)

WORKERS = 4
REQUESTS = 200
DRAINED = "w2"
DRAIN_IDLE_S = 2
PINNED_KEEP_GOING_S = 1.5  # how long w2's sessions go on using it after the page shows the drain


SECRET = None  # the RoutingSecret of the proxy under test, set in main()


def session_cookie(label):
    """The signed routing cookie of the made-up session `label`, the same for the same label."""
    return SECRET.cookie(label)


class WhoamiClient:
    """One keep-alive connection to the proxy asking GET /whoami for a given session."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def ask(self, label):
        """(status, worker name) for a request of the session session_cookie(label); raises OSError or
        HTTPException."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10.0)
        try:
            self.connection.request("GET", "/whoami", headers={"Cookie": "stickyproxy=" + session_cookie(label)})
            response = self.connection.getresponse()
            body = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, body

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def send_traffic(port, count, outcome):
    """GET /whoami `count` times through the proxy, each request a new session (its own cookie);
    records in `outcome` how many answered 200 and the first failure."""
    outcome["ok"] = 0
    client = WhoamiClient(port)
    try:
        for index in range(count):
            status, _ = client.ask("status-page-test-%d" % index)
            if status != 200:
                outcome.setdefault("error", "GET /whoami #%d answered %d" % (index, status))
                continue
            outcome["ok"] += 1
    except (OSError, http.client.HTTPException) as error:
        outcome.setdefault("error", "GET /whoami failed: %s" % error)
    finally:
        client.close()


class DrainTraffic(threading.Thread):
    """Live traffic while a worker drains: a new session (a label never used before) every request, and
    each session in `pinned` (labels of sessions routed to `worker`) once per round until
    `pinned_leave` is set.

    The main thread sets `drain_seen_at` (time.monotonic()) once the drain is visible; a new
    session sent after it that still reaches `worker` is recorded as a violation."""

    def __init__(self, port, worker, pinned):
        super().__init__(name="drain-traffic", daemon=True)
        self.client = WhoamiClient(port)
        self.worker = worker
        self.pinned = pinned
        self.stop = threading.Event()
        self.pinned_leave = threading.Event()
        self.drain_seen_at = None
        self.failures = []
        self.new_on_worker_after_drain = []
        self.new_sessions = 0
        self.new_sessions_after_drain = 0
        self.pinned_after_drain = 0

    def run(self):
        round_number = 0
        try:
            while not self.stop.is_set() and len(self.failures) < 5:
                self.one_round(round_number)
                round_number += 1
                self.stop.wait(0.02)
        finally:
            self.client.close()

    def one_round(self, round_number):
        session = "drain-new-%d" % round_number
        sent_at = time.monotonic()
        after_drain = self.drain_seen_at is not None and sent_at > self.drain_seen_at
        worker = self.request(session)
        if worker is None:
            return
        self.new_sessions += 1
        if after_drain:
            self.new_sessions_after_drain += 1
            if worker == self.worker:
                self.new_on_worker_after_drain.append(session)
        if self.pinned_leave.is_set():
            return
        for session in self.pinned:
            worker = self.request(session)
            if worker is not None and worker != self.worker:
                self.failures.append("pinned session %s reached %s, not %s" % (session, worker, self.worker))
            elif worker is not None and after_drain:
                self.pinned_after_drain += 1

    def request(self, session):
        """The worker that answered, or None after recording the failure."""
        try:
            status, worker = self.client.ask(session)
        except (OSError, http.client.HTTPException) as error:
            self.failures.append("GET /whoami (%s) failed: %s" % (session, error))
            return None
        if status != 200:
            self.failures.append("GET /whoami (%s) answered %d" % (session, status))
            return None
        return worker


def sessions_on(port, worker, count):
    """`count` session labels that the proxy routes to `worker` (routing them as it goes)."""
    client = WhoamiClient(port)
    found = []
    try:
        for index in range(400):
            status, on = client.ask("drain-pinned-%d" % index)
            if status == 200 and on == worker:
                found.append("drain-pinned-%d" % index)
                if len(found) == count:
                    return found
    finally:
        client.close()
    raise TestFailure("found only %d of %d sessions routed to %s" % (len(found), count, worker))


def run_ctl(processes, build_dir, config, work_dir, words):
    """Starts `stickyproxy ctl -c config words...`; returns the process and its output's path."""
    output = os.path.join(work_dir, "ctl-%s.log" % "-".join(words))
    argv = [os.path.join(build_dir, "stickyproxy"), "ctl", "-c", config] + words
    return processes.start("ctl " + " ".join(words), argv, output), output


def finish_ctl(ctl, output, timeout):
    """(exit status, output) of a ctl started by run_ctl, once it exits."""
    try:
        ctl.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("stickyproxy ctl (pid %d) did not answer in %.0f s" % (ctl.pid, timeout))
    with open(output) as text:
        return ctl.returncode, text.read().strip()


def page_state(worker):
    return ("document.querySelector('section[data-worker=\"%s\"] [data-field=\"state\"]').textContent"
            % worker)


def drain_under_traffic(page, proxy_port, processes, build_dir, config, work_dir, recorder):
    """Step 4: the operator drains w2 with ctl under live traffic while the page watches."""
    pinned = sessions_on(proxy_port, DRAINED, 3)
    traffic = DrainTraffic(proxy_port, DRAINED, pinned)
    traffic.start()
    try:
        started = time.monotonic()
        ctl, output = run_ctl(processes, build_dir, config, work_dir, ["drain", DRAINED, "wait", "60"])
        page.wait_for("%s === 'draining'" % page_state(DRAINED), "the page to show %s draining" % DRAINED,
                      timeout=15.0)
        traffic.drain_seen_at = time.monotonic()
        log("page shows %s draining %.1f s after ctl started; its %d sessions keep using it"
            % (DRAINED, traffic.drain_seen_at - started, len(pinned)))
        time.sleep(PINNED_KEEP_GOING_S)  # the pinned users' last requests, sent by the traffic thread
        traffic.pinned_leave.set()
        left_at = time.monotonic()
        page.wait_for("%s === 'drained'" % page_state(DRAINED), "the page to show %s drained" % DRAINED,
                      timeout=DRAIN_IDLE_S + 20.0)
        log("page shows %s drained %.1f s after its sessions left" % (DRAINED, time.monotonic() - left_at))
        status, answer = finish_ctl(ctl, output, page.deadline.cap(30.0))
        if status != 0 or answer != "%s drained" % DRAINED:
            raise TestFailure("ctl drain %s wait 60 exited %s with %r" % (DRAINED, status, answer))
    finally:
        traffic.stop.set()
        traffic.join(timeout=15.0)
    if traffic.failures:
        raise TestFailure("requests failed during the drain: %s" % traffic.failures[:5])
    if traffic.new_on_worker_after_drain:
        raise TestFailure("new sessions reached draining %s: %s" % (DRAINED, traffic.new_on_worker_after_drain[:5]))
    if traffic.pinned_after_drain == 0 or traffic.new_sessions_after_drain < 20:
        raise TestFailure("too little traffic during the drain: %d pinned and %d new-session requests"
                          % (traffic.pinned_after_drain, traffic.new_sessions_after_drain))
    log("ctl answered %r; %d new sessions (%d after the drain showed, none on %s), %d requests of %s's"
        " sessions after it, no failure" % (answer, traffic.new_sessions, traffic.new_sessions_after_drain, DRAINED,
                                            traffic.pinned_after_drain, DRAINED))

    ready, output = run_ctl(processes, build_dir, config, work_dir, ["ready", DRAINED])
    status, answer = finish_ctl(ready, output, page.deadline.cap(30.0))
    if status != 0:
        raise TestFailure("ctl ready %s exited %s with %r" % (DRAINED, status, answer))
    page.wait_for("%s === 'ready'" % page_state(DRAINED), "the page to show %s ready again" % DRAINED)
    recorder.check("the drain")


def watch(page, proxy_port, recorder):
    page.wait_for("document.querySelectorAll('section[data-worker]').length === %d &&"
                  " Object.values(window.statusPage.workers).every(w => w.state === 'ready') &&"
                  " document.querySelectorAll('section[data-worker] svg.spark polyline').length === %d"
                  % (WORKERS, WORKERS), "the page to show %d ready workers" % WORKERS)
    before = page.evaluate("Object.fromEntries(Object.entries(window.statusPage.workers)"
                           ".map(([name, w]) => [name, w.requests]))")
    names = page.evaluate("Array.from(document.querySelectorAll('section[data-worker]')).map(s => s.dataset.worker)")
    recorder.check("the first polls")
    log("page shows workers %s, requests so far %s" % (names, before))

    outcome = {}
    sender = threading.Thread(target=send_traffic, args=(proxy_port, REQUESTS, outcome), name="traffic",
                              daemon=True)
    sender.start()
    # Requests/s comes from the difference between two polls: it is above zero for a poll
    # that saw new requests, which the total's growth confirms.
    moved = page.wait_for("(() => { const before = %s; const moved = Object.entries(window.statusPage.workers)"
                          ".filter(([name, w]) => w.rps > 0 && w.requests > (before[name] || 0));"
                          " if (!moved.length) return null;"
                          " const [name, w] = moved[0]; const card = document.querySelector("
                          "`section[data-worker=\"${name}\"]`);"
                          " return { name, rps: w.rps, requests: w.requests,"
                          " shown: card.querySelector('[data-field=\"rps\"]').textContent,"
                          " shownRequests: card.querySelector('[data-field=\"requests\"]').textContent }; })()"
                          % json.dumps(before), "requests/s above zero on some worker", timeout=30.0)
    if float(moved["shown"]) <= 0 or int(moved["shownRequests"]) != moved["requests"]:
        raise TestFailure("the page's model moved (%r) but its text did not" % moved)
    log("numbers move: %s shows %s req/s, %s requests" % (moved["name"], moved["shown"], moved["shownRequests"]))

    sender.join(timeout=page.deadline.cap(60.0))
    if sender.is_alive():
        raise TestFailure("the %d requests did not finish in time" % REQUESTS)
    if outcome.get("error") or outcome["ok"] != REQUESTS:
        raise TestFailure("traffic through the proxy failed: %d of %d answered 200 (%s)"
                          % (outcome["ok"], REQUESTS, outcome.get("error")))
    expected = sum(before.values()) + REQUESTS
    totals = page.wait_for("(() => { const total = Object.values(window.statusPage.workers)"
                           ".reduce((sum, w) => sum + w.requests, 0); return total >= %d ? total : null; })()"
                           % expected, "the page's request totals to reach %d" % expected, timeout=15.0)
    busy = page.evaluate("Object.values(window.statusPage.workers).filter(w => w.requests > 0).length")
    if busy < 2:
        raise TestFailure("%d sessions all went to %d worker(s): the page's per-worker numbers say nothing"
                          % (REQUESTS, busy))
    recorder.check("traffic")
    log("page totals %d requests over %d workers" % (totals, busy))


def check_read_only(page):
    writes = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)"
                           ".filter(url => !/\\/status\\.json$/.test(url))")
    if writes:
        raise TestFailure("the status page fetched more than status.json: %s" % writes)


def main():
    global SECRET
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the CMake build tree with the binaries")
    parser.add_argument("--chromium", help="the browser (default: /usr/bin/chromium)")
    parser.add_argument("--timeout", type=float, default=140.0, help="bound on the whole run, seconds")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs) for debugging")
    parser.add_argument("--screenshot", help="save a PNG of the page at the end (or at the failure) here")
    args = parser.parse_args()

    build_dir = os.path.abspath(args.build_dir)
    for binary in ("stickyproxy", "test-worker"):
        if not os.access(os.path.join(build_dir, binary), os.X_OK):
            print("status_page_test: %s/%s is missing: build it first" % (build_dir, binary), file=sys.stderr)
            return 2
    chromium = find_chromium(args.chromium)
    if not chromium:
        print("status_page_test: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-status-")
    devtools = None
    browser = None
    page = None
    failed = True
    try:
        SECRET = RoutingSecret(work_dir)
        port, metrics_port, config, proxy, _ = start_proxy(build_dir, work_dir, processes, deadline, "test-worker",
                                                           WORKERS, SECRET.overrides({"routing.drain_idle": "%ds"
                                                                                      % DRAIN_IDLE_S}))
        url = "http://127.0.0.1:%d/" % metrics_port
        log("proxy on 127.0.0.1:%d (pid %d), status page on %s" % (port, proxy.pid, url))

        browser, devtools, recorder, page = open_page(processes, chromium, work_dir, deadline)

        page.navigate(url, "!!window.statusPage", "the status page")
        recorder.check("loading the status page")
        watch(page, port, recorder)
        drain_under_traffic(page, port, processes, build_dir, config, work_dir, recorder)
        check_read_only(page)
        devtools.pump(0.2)
        recorder.check("the whole run")
        if args.screenshot:
            save_screenshot(page, args.screenshot)
        failed = False
        log("PASS in %.1f s" % (args.timeout - deadline.remaining()))
        return 0
    except TestFailure as failure:
        log("FAIL: %s" % failure)
        if page is not None and args.screenshot:
            save_screenshot(page, args.screenshot)
        for name in ("stickyproxy.log", "chromium.log"):
            path = os.path.join(work_dir, name)
            if os.path.exists(path):
                print(tail(path, 25), file=sys.stderr)
        return 1
    finally:
        tear_down(processes, browser, devtools, work_dir,
                  args.keep_temp or (failed and os.environ.get("STATUS_PAGE_KEEP_TEMP")))


if __name__ == "__main__":
    sys.exit(main())
