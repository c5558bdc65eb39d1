#!/usr/bin/env python3
"""Binary upgrades under load: `stickyproxy upgrade` three times while app users and a keep-alive
hammer run, and not one request fails, no worker restarts and no session moves.

    python3 tests/load/upgrade_under_load.py --build-dir build [--upgrades 3] [--users 20]
        [--connections 16] [--interval 6] [--wrk auto|yes|no] [--keep-temp] [--timeout 240]

The ctest test `load: three binary upgrades under load drop no request`. The proxy runs from a copy
of build/stickyproxy in the test's folder, as an installed binary would, with four bundled app
workers on Unix sockets. Under load:

  users    stickyproxy-load plays --users users through the app's whole flow (uploads, analysis,
           maps, chat, export, download), each with its own cookie jar and keep-alive connection
  hammer   --connections keep-alive connections send GET /ping back to back: wrk when installed
           (--wrk auto), else threads of Python's http.client; any error or non-200 answer counts

Every --interval seconds the binary file is replaced (a new copy renamed over it, as apt does) and
`stickyproxy upgrade -c CONFIG` is run. Each upgrade must answer "upgraded: pid N", the new pid must
serve (its /status.json), the old process must exit by itself, and the four workers must keep their
pids with no restart counted. At the end: no failed hammer request, and the users' figures show no
session error, failed upload, wrong answer, missing answer or re-pin. The last proxy is stopped with
SIGTERM and must stop its adopted workers. Loopback only, kernel-chosen ports, every process stopped
by its pid; exit 0 on PASS, 1 on FAIL, 2 when a binary is missing. Python standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))

from browser_support import (TestFailure, begin_run, free_port_pair, http_get, log, run_proxy, tail,  # noqa: E402
                             tear_down, write_proxy_config)

WORKERS = ["w1", "w2", "w3", "w4"]
BINARIES = ["stickyproxy", "stickyproxy-backend", "stickyproxy-load", "stickyproxy-gendata"]
# The users' figures that must stay 0: a request resent after an idle close is one the proxy cut.
KEYS = ("session_errors", "upload_failures", "wrong_answers", "no_answers", "failed_uploads", "re_pins",
        "resent_after_idle_close")


def process_gone(pid):
    """True once `pid` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def reap():
    """Reaps exited children: old proxies are ours (the first) or reparented to us (subreaper)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def worker_pids(metrics_port):
    status, body = http_get(metrics_port, "/status.json", timeout=10.0)
    if status != 200:
        raise TestFailure("GET /status.json answered %d" % status)
    workers = json.loads(body.decode("utf-8"))["workers"]
    return {worker["name"]: (worker["pid"], worker["restarts"], worker["state"]) for worker in workers}


class Hammer:
    """`connections` threads, each sending GET /ping on one keep-alive connection back to back
    (http.client reconnects after a "Connection: close" answer). Counts answers and failures."""

    def __init__(self, port, connections):
        self.port = port
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(connections)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stopping.is_set():
            try:
                connection.request("GET", "/ping")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise TestFailure("status %d" % response.status)
                if response.will_close:
                    connection.close()
                with self.lock:
                    self.ok += 1
            except (OSError, http.client.HTTPException, TestFailure) as error:
                with self.lock:
                    self.failures.append("%s: %s" % (type(error).__name__, error))
                connection.close()
        connection.close()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=35)


def start_wrk(wrk, port, connections, seconds, out_path):
    argv = [wrk, "-t1", "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
            "http://127.0.0.1:%d/ping" % port]
    with open(out_path, "w") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wrk_figures(out_path):
    with open(out_path) as source:
        text = source.read()
    requests = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return (int(requests.group(1)) if requests else 0,
            sum(int(value) for value in errors.groups()) if errors else 0,
            int(non_2xx.group(1)) if non_2xx else 0, text)


def upgrade_once(binary, config, build_dir, metrics_port, before, old_pid, deadline):
    # A new file renamed over the old one, as a package upgrade does: the running process keeps
    # its (now unlinked) binary, the upgrade starts what is at the path now.
    shutil.copy2(os.path.join(build_dir, "stickyproxy"), binary + ".new")
    os.replace(binary + ".new", binary)
    started = time.monotonic()
    done = subprocess.run([binary, "upgrade", "-c", config], capture_output=True, text=True,
                          timeout=deadline.cap(60))
    took = time.monotonic() - started
    answer = (done.stdout + done.stderr).strip()
    match = re.match(r"upgraded: pid (\d+) serves now", answer)
    if done.returncode != 0 or not match:
        raise TestFailure("stickyproxy upgrade exited %d: %s" % (done.returncode, answer))
    new_pid = int(match.group(1))
    if new_pid == old_pid:
        raise TestFailure("the upgrade kept pid %d" % old_pid)
    # The old process finishes its requests (its idle keep-alive clients get their next answer
    # with "Connection: close") and exits by itself.
    while not process_gone(old_pid):
        reap()
        if deadline.remaining() <= 0:
            raise TestFailure("the old proxy (pid %d) did not exit after the upgrade" % old_pid)
        time.sleep(0.1)
    reap()
    after = worker_pids(metrics_port)
    for name in WORKERS:
        pid, restarts, state = after[name]
        if pid != before[name][0] or restarts != 0:
            raise TestFailure("worker %s: pid %s -> %s, restarts %s: it was not kept" % (name, before[name][0], pid,
                                                                                     restarts))
        if state != "ready":
            raise TestFailure("worker %s is %s after the upgrade" % (name, state))
    return new_pid, took


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--upgrades", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--interval", type=float, default=6.0, help="seconds of load before each upgrade")
    parser.add_argument("--wrk", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--keep-temp", action="store_true")
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    missing = [name for name in BINARIES if not os.access(os.path.join(build_dir, name), os.X_OK)]
    wrk = shutil.which("wrk") if args.wrk != "no" else None
    if missing or (args.wrk == "yes" and wrk is None):
        print("missing: %s" % ", ".join(missing + ([] if wrk or args.wrk != "yes" else ["wrk"])))
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-upgrade-")
    proxy_pids = []
    hammer = wrk_process = users = None
    proxy_log = None
    try:
        data = os.path.join(work_dir, "data")
        os.makedirs(data)
        subprocess.run([os.path.join(build_dir, "stickyproxy-gendata"), "--wards", "60", "--detail", "8", "--out",
                        data], check=True, capture_output=True, timeout=60)
        bin_dir = os.path.join(work_dir, "bin")
        os.makedirs(bin_dir)
        binary = os.path.join(bin_dir, "stickyproxy")
        shutil.copy2(os.path.join(build_dir, "stickyproxy"), binary)
        port, metrics_port = free_port_pair()
        config = write_proxy_config(work_dir, os.path.join(build_dir, "stickyproxy-backend"), port, metrics_port,
                                    workers=len(WORKERS), worker_args="--session-idle-timeout-s 86400",
                                    overrides={"proxy.access_log": "errors"})
        proxy, proxy_log = run_proxy(bin_dir, work_dir, processes, deadline, config, port)
        proxy_pids.append(proxy.pid)
        while any(state != "ready" for _, _, state in worker_pids(metrics_port).values()):
            if deadline.remaining() <= 0:
                raise TestFailure("the workers did not get ready")
            time.sleep(0.1)
        first = worker_pids(metrics_port)

        load_seconds = int(args.interval * (args.upgrades + 1)) + 2
        report = os.path.join(work_dir, "users.json")
        users = processes.start(
            "stickyproxy-load",
            [os.path.join(build_dir, "stickyproxy-load"), "--target", "127.0.0.1:%d" % port, "--data", data,
             "--users", str(args.users), "--duration", str(load_seconds), "--ramp", "2", "--think-min", "0.05",
             "--think-max", "0.3", "--json", report, "--proxy-pid", str(proxy.pid)],
            os.path.join(work_dir, "users.txt"))
        wrk_out = os.path.join(work_dir, "wrk.txt")
        if wrk:
            log("hammer: wrk, %d connections for %d s" % (args.connections, load_seconds))
            wrk_process = start_wrk(wrk, port, args.connections, load_seconds, wrk_out)
        else:
            log("hammer: %d Python keep-alive connections (no wrk here)" % args.connections)
            hammer = Hammer(port, args.connections)
            hammer.start()

        current = proxy.pid
        rows = []
        for number in range(1, args.upgrades + 1):
            time.sleep(args.interval)  # load runs meanwhile; nothing waits on this
            before = worker_pids(metrics_port)
            current, took = upgrade_once(binary, config, build_dir, metrics_port, before, current, deadline)
            proxy_pids.append(current)
            rows.append((number, current, took))
            log("upgrade %d: pid %d serves, answered in %.2f s; workers kept %s" %
                (number, current, took, " ".join("%s=%d" % (name, before[name][0]) for name in WORKERS)))

        users.wait(timeout=deadline.cap(load_seconds + 90))
        failures = []
        if wrk_process is not None:
            wrk_process.wait(timeout=deadline.cap(60))
            requests, errors, non_2xx, text = wrk_figures(wrk_out)
            log("hammer: wrk made %d requests, %d socket errors, %d non-2xx" % (requests, errors, non_2xx))
            if requests == 0 or errors or non_2xx:
                failures.append("wrk: %d requests, %d socket errors, %d non-2xx\n%s" % (requests, errors, non_2xx, text))
        else:
            hammer.stop()
            log("hammer: %d answers, %d failures" % (hammer.ok, len(hammer.failures)))
            if hammer.ok == 0 or hammer.failures:
                failures.append("hammer: %d answers, %d failures: %s" % (hammer.ok, len(hammer.failures),
                                                                         "; ".join(hammer.failures[:5])))
        with open(report) as source:
            totals = json.load(source)["totals"]
        log("users: %d flows, %d requests; errors: %s" % (
            totals["flows_completed"], totals.get("requests", 0),
            ", ".join("%s=%s" % (key, totals[key]) for key in KEYS)))
        for key in KEYS:
            if totals[key] != 0:
                failures.append("users: %s = %r" % (key, totals[key]))
        if totals["flows_completed"] < args.users:
            failures.append("users completed only %d flows" % totals["flows_completed"])
        last = worker_pids(metrics_port)
        for name in WORKERS:
            if last[name][0] != first[name][0] or last[name][1] != 0:
                failures.append("worker %s: pid %d -> %d, restarts %d" % (name, first[name][0], last[name][0],
                                                                         last[name][1]))
        # The last proxy adopted the workers: SIGTERM to it must stop them too.
        os.kill(current, signal.SIGTERM)
        worker_set = [pid for pid, _, _ in last.values()]
        while not all(process_gone(pid) for pid in [current] + worker_set):
            reap()
            if deadline.remaining() <= 0:
                failures.append("after SIGTERM to pid %d, still running: %s" % (
                    current, [pid for pid in [current] + worker_set if not process_gone(pid)]))
                break
            time.sleep(0.1)
        reap()
        print("\nupgrade  new pid  answered in")
        for number, pid, took in rows:
            print("%7d  %7d  %9.2f s" % (number, pid, took))
        if failures:
            raise TestFailure("\n".join(failures))
        print("PASS: %d upgrades under load; no request failed, no worker restarted, no session moved"
              % args.upgrades)
        return 0
    except (TestFailure, subprocess.SubprocessError, OSError, KeyError, ValueError) as error:
        print("FAIL: %s" % error)
        if proxy_log:
            print(tail(proxy_log, 60))
        return 1
    finally:
        if hammer is not None:
            hammer.stop()
        for process in (wrk_process, users):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for pid in proxy_pids:
            if not process_gone(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
