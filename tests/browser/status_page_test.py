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
  4. checks that the page issued no write (only GETs of / and /status.json).

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
import tempfile
import threading

from browser_support import (Deadline, ErrorRecorder, Page, ProcessSet, TestFailure, become_subreaper, find_chromium,
                             free_tcp_port, log, save_screenshot, start_chromium, tail, tear_down, wait_for_proxy,
                             write_proxy_config)

WORKERS = 4
REQUESTS = 200


def send_traffic(port, count, outcome):
    """GET /whoami `count` times through the proxy, each request a new session (its own cookie);
    records in `outcome` how many answered 200 and the first failure."""
    outcome["ok"] = 0
    connection = None
    try:
        for index in range(count):
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
            connection.request("GET", "/whoami", headers={"Cookie": "stickyproxy=status-page-test-%d" % index})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                outcome.setdefault("error", "GET /whoami #%d answered %d" % (index, response.status))
                continue
            outcome["ok"] += 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
    except (OSError, http.client.HTTPException) as error:
        outcome.setdefault("error", "GET /whoami failed: %s" % error)
    finally:
        if connection is not None:
            connection.close()


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

    writes = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)"
                           ".filter(url => !/\\/status\\.json$/.test(url))")
    if writes:
        raise TestFailure("the status page fetched more than status.json: %s" % writes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the CMake build tree with the binaries")
    parser.add_argument("--chromium", help="the browser (default: /usr/bin/chromium)")
    parser.add_argument("--timeout", type=float, default=100.0, help="bound on the whole run, seconds")
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

    become_subreaper()
    deadline = Deadline(args.timeout)
    work_dir = tempfile.mkdtemp(prefix="sp-status-")
    processes = ProcessSet()
    devtools = None
    browser = None
    page = None
    failed = True
    try:
        os.makedirs(os.path.join(work_dir, "run"))
        os.makedirs(os.path.join(work_dir, "state"))
        port = free_tcp_port()
        metrics_port = free_tcp_port()
        while metrics_port == port:
            metrics_port = free_tcp_port()
        config = write_proxy_config(work_dir, os.path.join(build_dir, "test-worker"), port, metrics_port, WORKERS)
        proxy_log = os.path.join(work_dir, "stickyproxy.log")
        proxy = processes.start("stickyproxy", [os.path.join(build_dir, "stickyproxy"), "-c", config], proxy_log)
        wait_for_proxy(port, proxy, deadline, proxy_log)
        url = "http://127.0.0.1:%d/" % metrics_port
        log("proxy on 127.0.0.1:%d (pid %d), status page on %s" % (port, proxy.pid, url))

        browser, devtools = start_chromium(processes, chromium, work_dir)
        recorder = ErrorRecorder(devtools)
        targets = devtools.call("Target.getTargets", timeout=deadline.cap(20.0))["targetInfos"]
        pages = [target for target in targets if target.get("type") == "page"]
        if pages:
            target_id = pages[0]["targetId"]
        else:
            target_id = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = devtools.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        recorder.watch(session_id, "page")
        devtools.call("Page.enable", session_id=session_id)
        log("chromium pid %d, page target %s" % (browser.pid, target_id))
        page = Page(devtools, recorder, session_id, deadline)

        page.navigate(url, "!!window.statusPage", "the status page")
        recorder.check("loading the status page")
        watch(page, port, recorder)
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
