#!/usr/bin/env python3
"""The operator's actions (scrape, drain, ready, restart) under real load, with figures.

    python3 tests/load/operate_under_load.py --build-dir build [--drain-idle 5s] [--scrape-seconds 30]
        [--connections 32] [--rounds 2] [--restart-wait 5] [--timeout 600] [--keep-temp]

An on-demand check, not part of ctest: it needs Debian's `wrk` and takes about two minutes.
Starts build/stickyproxy with a config written here (four build/stickyproxy-backend workers on
Unix sockets with --session-idle-timeout-s 86400, the proxy and its metrics listener on
kernel-chosen 127.0.0.1 ports, routing.drain_idle from --drain-idle) and runs three phases, each
printing a table of figures. Traffic is wrk (-t2) and twelve Python "users": threads, each with its
own session cookie, three per worker, each doing GET /system-health every 200 ms.

  1. Scrape impact: wrk on GET /ping over a fixed set of sessions, once alone and once with a
     thread fetching /metrics and /status.json every 100 ms; req/s, p50, p99 and their ratios.
  2. Drain under live traffic: wrk without cookies (every request a new session) plus the users;
     `stickyproxy ctl -c FILE drain w2 wait 60`; the w2 users go on for 3 s, then leave; time to
     drained; then `ctl ready w2`.
  3. Restart soak: wrk over fixed sessions plus the users while `ctl restart wN SECONDS` runs for
     w1..w4, --rounds times; each restart's duration and answer, and the p99 over the soak. A
     restart drains first, and wrk's sessions keep every worker active, so the drain would wait
     its whole SECONDS (default 60) for nothing: --restart-wait (5) bounds it, after which the
     restart moves the sessions still active (announced) and answers "drain timed out, N moved".

Asserts: not one failed request (wrk's non-2xx and socket errors, the users' errors and
non-200s); a user's session changes worker only across a restart of its worker; phase 1's
wrk keys are accepted (its requests stay on its fixed sessions); in phase 2, ctl exits 0 with
"w2 drained", the w2 users still reach w2 while it drains, stickyproxy_requests_total of w2 grows
during the drain by no more than the w2 users' requests plus what was in flight to w2 when the
drain began (no new session reached it), stickyproxy_worker_state says drained afterwards and
ready after `ctl ready w2`, and w2 takes new sessions again; in phase 3, every restart exits 0 with
"restarted wN (...): ready" and stickyproxy_worker_restarts_total grows by --rounds per worker.

Every process started here is stopped by its pid and the temp dir removed. Exit status 0 when
every assertion holds, 1 on a failure (printed), 2 on a usage or environment problem (no wrk, no
binaries). Python standard library only, plus the wrk binary.
"""

import argparse
import collections
import concurrent.futures
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import (RoutingSecret, TestFailure, begin_run, cookie_as_issued, http_get, log,  # noqa: E402
                             routing_key, start_proxy, tail, tear_down)
from wrk_support import WrkRun, ms, print_table, wrk_failures  # noqa: E402

WORKERS = ["w1", "w2", "w3", "w4"]
DRAINED = "w2"
COOKIE = "stickyproxy"  # write_proxy_config's routing.cookie_name
WORKER_ARGS = "--session-idle-timeout-s 86400"  # the app keeps the users' sessions for the whole run
WRK_THREADS = 2
USERS_PER_WORKER = 3
USER_PAUSE = 0.2  # seconds between two requests of one user
SCRAPE_INTERVAL = 0.1
WARMUP_SECONDS = 3
SETTLE_SECONDS = 2.0  # traffic before and after each operator action
DRAIN_WAIT = 60  # the "Done when": ctl drain w2 wait 60
LEAVE_AFTER = 3.0  # the w2 users go on this long after the drain starts
CTL_SLACK = 15.0  # ctl's own start and answer, on top of what the proxy waits
# write_proxy_config's stop_grace and startup_timeout: the most a restart waits past its drain.
RESTART_STOP_AND_START = 3 + 20

# Every request carries one of a fixed set of signed routing cookies, one list per wrk thread,
# taken in turn (wrk's Lua sees threads, not connections). Python signs them (wrk_cookie(), under
# the proxy's routing.secret_file), sends each once and writes into the script the value the
# proxy gave back (pinned to its worker), as a browser would keep it: the proxy replaces a value
# that fails its MAC with a fresh key, which would make every request a new session.
WRK_SCRIPT = """-- Written by tests/load/operate_under_load.py: fixed sessions, wrk_cookie() there.
local threads = 0
local sessions = {
%s
}

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  cookies = sessions[thread_number]
  turn = 0
end

function request()
  turn = turn %% #cookies + 1
  return wrk.format("GET", nil, {Cookie = cookies[turn]})
end
"""


def wrk_cookie(secret, thread, n):
    """The routing cookie WRK_SCRIPT gives the n-th session of wrk thread `thread` (both from 1)."""
    return secret.cookie("wrk-%d-%d" % (thread, n))


def wrk_script(port, secret, threads, sessions_per_thread):
    rows = []
    for thread in range(1, threads + 1):
        cookies = ", ".join('"%s=%s"' % (COOKIE, cookie_as_issued(port, wrk_cookie(secret, thread, n)))
                            for n in range(1, sessions_per_thread + 1))
        rows.append("  {%s}," % cookies)
    return WRK_SCRIPT % "\n".join(rows)


def user_cookie(secret, n):
    return secret.cookie("user-%d" % n)


class Checks:
    """The assertions of one phase: failures are collected and raised together once the phase has
    printed its figures."""

    def __init__(self, phase):
        self.phase = phase
        self.failed = []

    def expect(self, holds, message):
        if not holds:
            self.failed.append(message)

    def raise_if_failed(self):
        if self.failed:
            raise TestFailure("%s:\n  %s" % (self.phase, "\n  ".join(self.failed)))


# ---- /metrics ----

SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One GET /metrics: its samples, and when it was sent and answered (time.monotonic())."""

    def __init__(self, metrics_port):
        self.sent = time.monotonic()
        status, body = http_get(metrics_port, "/metrics", timeout=5.0)
        self.answered = time.monotonic()
        if status != 200:
            raise TestFailure("GET /metrics answered %d" % status)
        self.samples = []
        for line in body.decode("utf-8").splitlines():
            match = SAMPLE_LINE.match(line)
            if match:
                labels = dict(LABEL_PAIR.findall(match.group(2) or ""))
                self.samples.append((match.group(1), labels, float(match.group(3))))

    def total(self, name, **labels):
        """The sum of `name` over the samples that carry `labels` (and any others)."""
        return sum(value for sample, sample_labels, value in self.samples
                   if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()))

    def requests(self, worker):
        return int(self.total("stickyproxy_requests_total", worker=worker))

    def state(self, worker):
        states = [labels["state"] for name, labels, value in self.samples
                  if name == "stickyproxy_worker_state" and labels.get("worker") == worker and value == 1]
        return states[0] if len(states) == 1 else "?"

    def restarts(self):
        return {worker: int(self.total("stickyproxy_worker_restarts_total", worker=worker)) for worker in WORKERS}


def wait_for_state(metrics_port, worker, states, seconds):
    """The first scrape that shows `worker` in one of `states`."""
    end = time.monotonic() + seconds
    while True:
        scrape = Scrape(metrics_port)
        if scrape.state(worker) in states:
            return scrape
        if time.monotonic() >= end:
            raise TestFailure("%s is %s, not %s, after %.0f s"
                              % (worker, scrape.state(worker), "/".join(states), seconds))
        time.sleep(0.02)


class Scraper(threading.Thread):
    """Fetches /metrics and /status.json every SCRAPE_INTERVAL, as Prometheus and an open status
    page would together; keeps each fetch's duration and every failure."""

    def __init__(self, metrics_port):
        super().__init__(name="scraper", daemon=True)
        self.metrics_port = metrics_port
        self.durations = {"/metrics": [], "/status.json": []}
        self.failures = []
        self.stopping = threading.Event()

    def run(self):
        next_tick = time.monotonic()
        while not self.stopping.is_set():
            for path in self.durations:
                self.fetch(path)
            next_tick += SCRAPE_INTERVAL
            self.stopping.wait(max(0.0, next_tick - time.monotonic()))

    def fetch(self, path):
        started = time.monotonic()
        try:
            status, _ = http_get(self.metrics_port, path, timeout=5.0)
        except OSError as error:
            self.failures.append("GET %s: %s" % (path, error))
            return
        if status != 200:
            self.failures.append("GET %s answered %d" % (path, status))
            return
        self.durations[path].append(time.monotonic() - started)

    def stop(self):
        self.stopping.set()
        self.join(timeout=10.0)


# ---- Python users ----

def session_get(port, path, key):
    """One GET with the routing cookie `key` on a fresh connection: (status, X-Worker, Set-Cookie)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
    try:
        connection.request("GET", path, headers={"Cookie": "%s=%s" % (COOKIE, key)})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Worker"), response.getheader("Set-Cookie")
    finally:
        connection.close()


class User(threading.Thread):
    """A browser session: its own routing key, GET /system-health every USER_PAUSE seconds on a
    keep-alive connection. Every answer must be 200 with X-Worker and without a new cookie; keeps
    (sent, answered, worker) of each answer and every change of worker."""

    def __init__(self, port, key, worker):
        """`key`: the session's routing cookie value (replaced by the one the proxy re-issues)."""
        super().__init__(name="user-%s" % key[:4], daemon=True)
        self.port = port
        self.key = key
        self.worker = worker
        self.leave = threading.Event()
        self.answers = []
        self.failures = []
        self.changes = []  # (previous answer, this answer, from worker, to worker), time.monotonic()

    def run(self):
        connection = None
        while not self.leave.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10.0)
            if not self.request_once(connection):
                connection.close()
                connection = None
            self.leave.wait(USER_PAUSE)
        if connection is not None:
            connection.close()

    def request_once(self, connection):
        """One request; False when the connection cannot be used again."""
        sent = time.monotonic()
        try:
            connection.request("GET", "/system-health", headers={"Cookie": "%s=%s" % (COOKIE, self.key)})
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            self.failures.append("%s: GET /system-health failed: %r" % (self.name, error))
            return False
        self.check(response, sent, time.monotonic())
        return not response.will_close

    def check(self, response, sent, answered):
        worker = response.getheader("X-Worker")
        if response.status != 200 or not worker:
            self.failures.append("%s: GET /system-health answered %d (X-Worker %r)"
                                 % (self.name, response.status, worker))
            return
        for header in response.msg.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0].strip()
            if not pair.startswith(COOKIE + "="):
                continue
            if routing_key(pair[len(COOKIE) + 1:]) != routing_key(self.key):
                self.failures.append("%s: the proxy replaced its routing key" % self.name)
            else:
                self.key = pair[len(COOKIE) + 1:]  # re-issued (pinned): kept, as a browser does
        if worker != self.worker:
            previous = self.answers[-1][1] if self.answers else sent
            self.changes.append((previous, answered, self.worker, worker))
            self.worker = worker
        self.answers.append((sent, answered, worker))


def pick_users(port, secret, first_key):
    """USERS_PER_WORKER users per worker: cookies from user_cookie(first_key) on, each probed once to
    learn its worker, kept while that worker still needs users."""
    needed = {worker: USERS_PER_WORKER for worker in WORKERS}
    users = []
    for n in range(first_key, first_key + 400):
        status, worker, _ = session_get(port, "/system-health", user_cookie(secret, n))
        if status != 200:
            raise TestFailure("probing user key %d: GET /system-health answered %d" % (n, status))
        if needed.get(worker, 0) > 0:
            needed[worker] -= 1
            users.append(User(port, user_cookie(secret, n), worker))
        if not any(needed.values()):
            return users
    raise TestFailure("400 user keys did not give %d users per worker (still needed: %s)" % (USERS_PER_WORKER, needed))


def stop_users(users):
    for user in users:
        user.leave.set()
    for user in users:
        user.join(timeout=15.0)
    stuck = [user.name for user in users if user.is_alive()]
    if stuck:
        raise TestFailure("users still waiting for an answer 15 s after leaving: %s" % ", ".join(stuck))


def user_failures(users):
    return [failure for user in users for failure in user.failures]


def user_requests(users):
    return sum(len(user.answers) for user in users) + len(user_failures(users))


# ---- the proxy and ctl ----

CtlAnswer = collections.namedtuple("CtlAnswer", "status text finished")


class Rig:
    """The proxy under test in its temp dir, and the means to drive it: ctl, wrk, its ports."""

    def __init__(self, build_dir, work_dir, processes, connections):
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.connections = connections
        self.port = self.metrics_port = self.config = self.secret = None
        self.proxy_log = os.path.join(work_dir, "stickyproxy.log")  # as start_proxy writes it
        self.wrk_script = os.path.join(work_dir, "fixed_sessions.lua")

    def start(self, drain_idle, deadline):
        self.secret = RoutingSecret(self.work_dir)
        self.port, self.metrics_port, self.config, proxy, _ = start_proxy(
            self.build_dir, self.work_dir, self.processes, deadline, "stickyproxy-backend", len(WORKERS),
            overrides=self.secret.overrides({"routing.drain_idle": drain_idle}), worker_args=WORKER_ARGS)
        log("proxy on 127.0.0.1:%d (pid %d), metrics on 127.0.0.1:%d, drain_idle %s"
            % (self.port, proxy.pid, self.metrics_port, drain_idle))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def ctl(self, words, timeout):
        """`stickyproxy ctl -c CONFIG WORDS...`; a ctl still running after `timeout` is killed."""
        argv = [os.path.join(self.build_dir, "stickyproxy"), "ctl", "-c", self.config] + words
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("`ctl %s` did not answer within %.0f s" % (" ".join(words), timeout))
        return CtlAnswer(done.returncode, (done.stdout + done.stderr).strip(), time.monotonic())

    def write_wrk_script(self):
        """WRK_SCRIPT with the fixed sessions' cookies as the proxy issues them (each sent once: the
        sessions start here)."""
        with open(self.wrk_script, "w") as script:
            script.write(wrk_script(self.port, self.secret, WRK_THREADS, self.sessions_per_thread()))

    def fixed_session_wrk(self, name, seconds):
        """wrk on /ping over connections/threads fixed sessions per thread (WRK_SCRIPT)."""
        return WrkRun(self.processes, self.work_dir, name, self.url("/ping"), WRK_THREADS, self.connections, seconds,
                      script=self.wrk_script)

    def new_session_wrk(self, name, seconds):
        """wrk on /ping without a cookie: every request is a new session, placed by the proxy."""
        return WrkRun(self.processes, self.work_dir, name, self.url("/ping"), WRK_THREADS, self.connections, seconds)

    def sessions_per_thread(self):
        return max(1, self.connections // WRK_THREADS)


def check_cookie_values(rig):
    """Whether the proxy keeps an arbitrary cookie value, and the session of a signed cookie as the
    wrk script sends them (it may re-issue the cookie pinned, with the same key)."""
    sent = wrk_cookie(rig.secret, 1, 1)
    _, _, arbitrary = session_get(rig.port, "/ping", "load-1-1")
    _, _, set_cookie = session_get(rig.port, "/ping", sent)
    issued = set_cookie.split(";", 1)[0].strip()[len(COOKIE) + 1:] if set_cookie else ""
    replaced = bool(arbitrary and arbitrary.startswith(COOKIE + "="))
    signed_replaced = bool(issued) and routing_key(issued) != routing_key(sent)
    log("a cookie value such as load-1-1 is %s; the signed cookies of the wrk script are %s"
        % ("replaced by a fresh key (a new session per request)" if replaced else "kept",
           "replaced" if signed_replaced else "kept" + (" (re-issued pinned)" if issued else "")))
    if signed_replaced:
        raise TestFailure("the proxy replaced the wrk script's cookie %s: %s" % (sent, set_cookie))


# ---- phase 1 ----

def scrape_impact(rig, seconds, deadline):
    checks = Checks("phase 1, scrape impact")
    sessions_before = Scrape(rig.metrics_port).total("stickyproxy_sessions")
    rig.write_wrk_script()
    warm_up = rig.fixed_session_wrk("warm-up", WARMUP_SECONDS).finish(timeout=deadline.cap(WARMUP_SECONDS + 15))
    alone = rig.fixed_session_wrk("alone", seconds).finish(timeout=deadline.cap(seconds + 15))
    scraper = Scraper(rig.metrics_port)
    scraper.start()
    try:
        scraped = rig.fixed_session_wrk("scraped", seconds).finish(timeout=deadline.cap(seconds + 15))
    finally:
        scraper.stop()
    sessions_grew = Scrape(rig.metrics_port).total("stickyproxy_sessions") - sessions_before
    fixed = WRK_THREADS * rig.sessions_per_thread()

    print_table("phase 1: scrape impact (wrk -t%d -c%d -d%ds, GET /ping over %d fixed sessions)"
                % (WRK_THREADS, rig.connections, seconds, fixed),
                ["run", "req/s", "p50", "p99", "max", "failed"],
                [["alone", "%.0f" % alone.rps, ms(alone.p50), ms(alone.p99), ms(alone.max), wrk_failures(alone)],
                 ["scraped every %.0f ms" % (SCRAPE_INTERVAL * 1000), "%.0f" % scraped.rps, ms(scraped.p50),
                  ms(scraped.p99), ms(scraped.max), wrk_failures(scraped)],
                 ["ratio scraped/alone", "%.3f" % (scraped.rps / alone.rps), "%.3f" % (scraped.p50 / alone.p50),
                  "%.3f" % (scraped.p99 / alone.p99), "", ""]],
                ["scrapes: %s; %d failed" % (", ".join(
                    "%d x %s (median %s)" % (len(times), path, ms(statistics.median(times)) if times else "-")
                    for path, times in scraper.durations.items()), len(scraper.failures)),
                 "sessions on the proxy grew by %d (the script's keys: %d)" % (sessions_grew, fixed)])

    for name, result in (("warm-up", warm_up), ("alone", alone), ("scraped", scraped)):
        checks.expect(wrk_failures(result) == 0, "wrk %s: %d non-2xx answers, %d socket errors"
                      % (name, result.non_2xx, result.socket_errors))
    checks.expect(not scraper.failures, "scrapes failed: %s" % scraper.failures[:5])
    checks.expect(0 < sessions_grew <= fixed, "wrk's requests made %d sessions, not at most its %d fixed keys"
                  % (sessions_grew, fixed))
    checks.raise_if_failed()


# ---- phase 2 ----

def drain_under_traffic(rig, drain_idle_seconds, deadline):
    checks = Checks("phase 2, drain %s under live traffic" % DRAINED)
    users = pick_users(rig.port, rig.secret, first_key=0)
    leaving = [user for user in users if user.worker == DRAINED]
    log("users: %s" % ", ".join("%s on %s" % (user.name, user.worker) for user in users))
    wrk = rig.new_session_wrk("drain", int(deadline.remaining()) + 1)
    for user in users:
        user.start()
    try:
        time.sleep(SETTLE_SECONDS)
        drain = drain_w2(rig, leaving, deadline)
        back = ready_w2(rig, deadline)
    finally:
        stop_users(users)
        traffic = wrk.interrupt()

    accounting = account_drain(users, drain)
    print_drain_figures(rig, traffic, users, leaving, drain, accounting, back, drain_idle_seconds)
    expect_drain(checks, traffic, users, leaving, drain, accounting, back)
    checks.raise_if_failed()


Drain = collections.namedtuple("Drain", "started baseline answer final")
Ready = collections.namedtuple("Ready", "answer state new_requests")
DrainAccount = collections.namedtuple("DrainAccount", "growth users_least users_most in_flight")


def drain_w2(rig, leaving, deadline):
    """`ctl drain w2 wait 60` in a thread; the scrape that first shows w2 draining is the baseline;
    the w2 users leave LEAVE_AFTER seconds after the drain began; the final scrape follows ctl's
    answer."""
    timeout = deadline.cap(DRAIN_WAIT + CTL_SLACK)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        pending = pool.submit(rig.ctl, ["drain", DRAINED, "wait", str(DRAIN_WAIT)], timeout)
        baseline = wait_for_state(rig.metrics_port, DRAINED, ("draining", "drained"), 5.0)
        time.sleep(max(0.0, started + LEAVE_AFTER - time.monotonic()))
        stop_users(leaving)
        answer = pending.result(timeout=timeout + 5)
    return Drain(started, baseline, answer, Scrape(rig.metrics_port))


def ready_w2(rig, deadline):
    """`ctl ready w2`, the state it brings, and the requests w2 takes in the SETTLE_SECONDS after."""
    answer = rig.ctl(["ready", DRAINED], timeout=deadline.cap(CTL_SLACK))
    try:
        ready = wait_for_state(rig.metrics_port, DRAINED, ("ready",), 5.0)
    except TestFailure as failure:
        return Ready(answer, str(failure), 0)
    time.sleep(SETTLE_SECONDS)
    return Ready(answer, "ready", Scrape(rig.metrics_port).requests(DRAINED) - ready.requests(DRAINED))


def account_drain(users, drain):
    """w2's request count between the baseline and the final scrape, against the users' answers
    from w2 that may (least: sent after the baseline was answered; most: answered after it was
    sent) fall in that window, and what was in flight to w2 at the baseline."""
    from_w2 = [(sent, answered) for user in users for sent, answered, worker in user.answers if worker == DRAINED]
    baseline = drain.baseline
    in_flight = baseline.total("stickyproxy_in_flight_requests", worker=DRAINED) + \
        baseline.total("stickyproxy_queued_requests", worker=DRAINED)
    return DrainAccount(growth=drain.final.requests(DRAINED) - baseline.requests(DRAINED),
                        users_least=sum(1 for sent, _ in from_w2 if sent > baseline.answered),
                        users_most=sum(1 for _, answered in from_w2 if answered > baseline.sent),
                        in_flight=int(in_flight))


def new_sessions_on_w2(account):
    """Requests w2 took while draining that neither its users nor the requests in flight at the
    drain's start explain: new sessions."""
    return max(0, account.growth - account.users_most - account.in_flight)


def print_drain_figures(rig, traffic, users, leaving, drain, account, back, drain_idle_seconds):
    if account.users_least == account.users_most:
        sent = "its users' requests in that window: %d" % account.users_most
    else:
        sent = "its users' requests in that window: %d to %d (answers crossing the first scrape)" % (
            account.users_least, account.users_most)
    rows = [
        ["wrk without cookie (a new session each)", "%d requests, %.0f req/s, p50 %s, p99 %s, %d failed" % (
            traffic.requests, traffic.rps, ms(traffic.p50), ms(traffic.p99), wrk_failures(traffic))],
        ["users (GET /system-health every %.0f ms)" % (USER_PAUSE * 1000), "%d (%d on %s), %d requests, %d failed" % (
            len(users), len(leaving), DRAINED, user_requests(users), len(user_failures(users)))],
        ["ctl drain %s wait %d" % (DRAINED, DRAIN_WAIT), "exit %d: %s" % (drain.answer.status, drain.answer.text)],
        ["time to drained", "%.2f s (%s users left after %.0f s; drain_idle %.0f s)" % (
            drain.answer.finished - drain.started, DRAINED, LEAVE_AFTER, drain_idle_seconds)],
        ["%s requests while draining" % DRAINED, "+%d on /metrics; %s; in flight to it when the drain began: %d"
         % (account.growth, sent, account.in_flight)],
        ["new sessions on %s while draining" % DRAINED, "%d" % new_sessions_on_w2(account)],
        ["state after the drain", drain.final.state(DRAINED)],
        ["ctl ready %s" % DRAINED, "exit %d: %s; then %s, +%d requests in %.0f s" % (
            back.answer.status, back.answer.text, back.state, back.new_requests, SETTLE_SECONDS)],
    ]
    print_table("phase 2: drain %s under live traffic (wrk -t%d -c%d)" % (DRAINED, WRK_THREADS, rig.connections),
                ["figure", "value"], rows)


def expect_drain(checks, traffic, users, leaving, drain, account, back):
    checks.expect(drain.answer.status == 0 and drain.answer.text == "%s drained" % DRAINED,
                  "ctl drain exited %d: %r" % (drain.answer.status, drain.answer.text))
    checks.expect(wrk_failures(traffic) == 0, "wrk: %d non-2xx answers, %d socket errors"
                  % (traffic.non_2xx, traffic.socket_errors))
    checks.expect(not user_failures(users), "users failed: %s" % user_failures(users)[:5])
    changes = [(user.name, old, new) for user in users for _, _, old, new in user.changes]
    checks.expect(not changes, "sessions changed worker: %s" % changes[:5])
    for user in leaving:
        kept_on = [worker for sent, _, worker in user.answers if sent > drain.baseline.answered]
        checks.expect(kept_on and set(kept_on) == {DRAINED}, "%s (a %s session) while %s drained: answers from %s"
                      % (user.name, DRAINED, DRAINED, kept_on or "none"))
    checks.expect(new_sessions_on_w2(account) == 0, "%d new sessions reached %s while it drained (+%d requests, its "
                  "users at most %d, %d in flight)" % (new_sessions_on_w2(account), DRAINED, account.growth,
                                                       account.users_most, account.in_flight))
    checks.expect(account.growth >= account.users_least, "/metrics counted %d requests on %s, fewer than its users' %d"
                  % (account.growth, DRAINED, account.users_least))
    checks.expect(drain.final.total("stickyproxy_worker_state", worker=DRAINED, state="drained") == 1,
                  "stickyproxy_worker_state says %s, not drained" % drain.final.state(DRAINED))
    checks.expect(back.answer.status == 0 and back.state == "ready", "ctl ready: exit %d %r, then %s"
                  % (back.answer.status, back.answer.text, back.state))
    checks.expect(back.new_requests > 0, "%s took no request in %.0f s after ctl ready" % (DRAINED, SETTLE_SECONDS))


# ---- phase 3 ----

Restart = collections.namedtuple("Restart", "round worker started answer")


def restart_soak(rig, rounds, restart_wait, deadline):
    checks = Checks("phase 3, restart soak")
    users = pick_users(rig.port, rig.secret, first_key=1000)
    before = Scrape(rig.metrics_port).restarts()
    wrk = rig.fixed_session_wrk("soak", int(deadline.remaining()) + 1)
    for user in users:
        user.start()
    restarts = []
    try:
        time.sleep(SETTLE_SECONDS)
        for round_number in range(1, rounds + 1):
            for worker in WORKERS:
                restarts.append(restart_one(rig, round_number, worker, restart_wait, deadline))
        time.sleep(SETTLE_SECONDS)
    finally:
        stop_users(users)
        soak = wrk.interrupt()
    grew = {worker: count - before[worker] for worker, count in Scrape(rig.metrics_port).restarts().items()}

    moves = [(user.name,) + change for user in users for change in user.changes]
    print_soak_figures(rig, rounds, restart_wait, restarts, soak, users, moves, grew)
    expect_soak(checks, rounds, restarts, soak, users, moves, grew)
    checks.raise_if_failed()


def restart_one(rig, round_number, worker, restart_wait, deadline):
    started = time.monotonic()
    answer = rig.ctl(["restart", worker, str(restart_wait)],
                     timeout=deadline.cap(restart_wait + RESTART_STOP_AND_START + CTL_SLACK))
    log("round %d: restart %s: %.2f s, exit %d: %s" % (round_number, worker, answer.finished - started,
                                                         answer.status, answer.text))
    return Restart(round_number, worker, started, answer)


def move_explained(restarts, worker, previous, answered):
    """Whether a restart of `worker` ran between a session's last answer from it (at `previous`)
    and its first answer from another worker (at `answered`): a restart moves its sessions."""
    return any(r.worker == worker and r.started <= answered and previous <= r.answer.finished for r in restarts)


def print_soak_figures(rig, rounds, restart_wait, restarts, soak, users, moves, grew):
    rows = [[r.round, r.worker, "%.2f" % (r.answer.finished - r.started), r.answer.status, r.answer.text]
            for r in restarts]
    print_table("phase 3: restart soak (ctl restart wN %d, w1..w4, rounds: %d; wrk -t%d -c%d over %d fixed sessions)"
                % (restart_wait, rounds, WRK_THREADS, rig.connections, WRK_THREADS * rig.sessions_per_thread()),
                ["round", "worker", "seconds", "exit", "answer"], rows,
                ["wrk during the soak: %d requests, %.0f req/s, p50 %s, p99 %s, max %s, %d failed" % (
                    soak.requests, soak.rps, ms(soak.p50), ms(soak.p99), ms(soak.max), wrk_failures(soak)),
                 "users: %d, %d requests, %d failed, %d sessions moved off a worker being restarted" % (
                    len(users), user_requests(users), len(user_failures(users)), len(moves)),
                 "stickyproxy_worker_restarts_total grew: %s" % ", ".join(
                    "%s +%d" % (worker, grew[worker]) for worker in WORKERS)])


def expect_soak(checks, rounds, restarts, soak, users, moves, grew):
    for r in restarts:
        checks.expect(r.answer.status == 0 and r.answer.text.startswith("restarted %s (" % r.worker)
                      and r.answer.text.endswith("): ready"),
                      "round %d, restart %s: exit %d: %r" % (r.round, r.worker, r.answer.status, r.answer.text))
    checks.expect(wrk_failures(soak) == 0, "wrk: %d non-2xx answers, %d socket errors"
                  % (soak.non_2xx, soak.socket_errors))
    checks.expect(not user_failures(users), "users failed: %s" % user_failures(users)[:5])
    stray = [(name, old, new) for name, previous, answered, old, new in moves
             if not move_explained(restarts, old, previous, answered)]
    checks.expect(not stray, "sessions changed worker outside a restart of their worker: %s" % stray[:5])
    checks.expect(all(grew[worker] == rounds for worker in WORKERS),
                  "stickyproxy_worker_restarts_total grew by %s, expected %d each" % (grew, rounds))


# ---- main ----

def duration_seconds(text):
    """A config duration such as 5s or 1500ms, in seconds; ValueError when it is not one we take."""
    match = re.fullmatch(r"([1-9][0-9]*)(ms|s|m)", text)
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy and stickyproxy-backend")
    parser.add_argument("--drain-idle", default="5s", help="routing.drain_idle of the proxy (default 5s)")
    parser.add_argument("--scrape-seconds", type=int, default=30, help="length of each phase-1 wrk run (default 30)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections, over 2 threads (default 32)")
    parser.add_argument("--rounds", type=int, default=2, help="restarts of each worker in phase 3 (default 2)")
    parser.add_argument("--restart-wait", type=int, default=5,
                        help="SECONDS of `ctl restart wN SECONDS`: the drain's wait before the restart moves the "
                             "sessions still active (wrk's never go quiet) (default 5)")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on the whole run, seconds (default 600)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (config, logs, wrk output)")
    args = parser.parse_args()
    try:
        args.drain_idle_seconds = duration_seconds(args.drain_idle)
    except ValueError:
        parser.error("--drain-idle %r: expected a duration such as 5s or 1500ms" % args.drain_idle)
    if args.drain_idle_seconds + LEAVE_AFTER >= DRAIN_WAIT - 5:
        parser.error("--drain-idle %s cannot drain within `wait %d`" % (args.drain_idle, DRAIN_WAIT))
    if min(args.scrape_seconds, args.connections - 1, args.rounds, args.restart_wait) < 1:
        parser.error("--scrape-seconds, --rounds and --restart-wait must be at least 1, --connections at least 2")
    return args


def missing_tools(build_dir):
    missing = [os.path.join(build_dir, binary) for binary in ("stickyproxy", "stickyproxy-backend")
               if not os.access(os.path.join(build_dir, binary), os.X_OK)]
    if shutil.which("wrk") is None:
        missing.append("wrk (apt-get install wrk)")
    return missing


def main():
    args = parse_arguments()
    build_dir = os.path.abspath(args.build_dir)
    missing = missing_tools(build_dir)
    if missing:
        print("operate_under_load: missing: %s" % ", ".join(missing), file=sys.stderr)
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-load-")
    rig = Rig(build_dir, work_dir, processes, args.connections)
    try:
        rig.start(args.drain_idle, deadline)
        check_cookie_values(rig)
        scrape_impact(rig, args.scrape_seconds, deadline)
        drain_under_traffic(rig, args.drain_idle_seconds, deadline)
        restart_soak(rig, args.rounds, args.restart_wait, deadline)
        log("PASS in %.1f s" % (args.timeout - deadline.remaining()))
        return 0
    except (TestFailure, OSError, http.client.HTTPException) as failure:
        log("FAIL: %s" % failure)
        print(tail(rig.proxy_log, 30), file=sys.stderr)
        return 1
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
