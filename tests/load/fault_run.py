#!/usr/bin/env python3
"""The users' flow under faults: the proxy keeps every session whole while workers die, hang, roll
over and change, and forged cookies leave no trace.

    python3 tests/load/fault_run.py --build-dir build [--duration 300] [--users 50] [--seed 7]
        [--short] [--keep-temp] [--timeout SECONDS]

On demand (about 6 minutes); with --short (about a minute in all: 10 users for 30 s, one kill of
the worker most users are on, one reload that changes a worker, a forged-cookie burst of 3,000) it
is the ctest test
`load: fault run (short)`.

Starts build/stickyproxy with a copy of conf/prod.conf (listen and metrics_listen on kernel-chosen
127.0.0.1 ports, admin socket, worker sockets and state_dir in a temp dir, the workers'
build/stickyproxy-backend from --build-dir; every other key as shipped), then runs --users users
(app_flow.User: whole and chunked uploads, analysis, maps, streamed chat, exports, as in
app_users.py) for --duration seconds; a user under way at the end finishes its flow. Meanwhile, on
a schedule (printed first):

  kill -9        a random worker every 20 s, and every 5 s for one minute (its pid from
                 /status.json, checked to be the proxy's child)
  hang           SIGSTOP to one worker, SIGCONT 10 s later
  rollover       `stickyproxy ctl -c FILE restart wN 5` for w1..w4 in turn
  reload         SIGHUP after rewriting the copy: w2's args gain `--header-timeout-ms 10000` (the
                 backend's default, so harmless), later a fifth worker w5 is added, later removed
  sprayer        100,000 GET /ping on 4 keep-alive connections, each with a made-up `stickyproxy`
                 cookie: a random 32-hex key, a random key with a wrong MAC (K.M), or one pinned to a
                 worker with a wrong MAC (K.W.T.M)

Samplers read the proxy's RSS (VmRSS) every second and <state_dir>/moved-keys.json (entries and
bytes) every 2 s. At the end the proxy's access log (its stdout) is read: per session key=, a
request answered by another worker than the session's previous request is a move, announced when
its line carries prev=<that previous worker>; the workers' "adopted session ... from wN" lines
(their stderr, in the same log) are counted beside it.

Passes when: every flow a user started finished, no request failed (uploads in flight at a kill
included), no session error (app_flow.SESSION_ERROR_TEXTS), every move announced, moved-keys.json
never held more than the users' sessions + MOVED_SLACK entries (nor more than MOVED_BYTES_PER_ENTRY
bytes each), the proxy's RSS after the sprayer (the median of the samples from 30 s after it ended,
5 s with --short) within RSS_MARGIN + 10% of its peak before the sprayer, and every fault was
carried out as the contract says (a reload that changes w2's args restarts w2: its pid changes).
A request that finds its kept-alive connection closed is sent again on a new one, as a browser
does, and counted; so is a chat answer whose stream a kill cut short (no proxy can finish a
response its worker died in the middle of), asked again once as the page does. Prints the figures as tables and PASS or FAIL; exit 0 on PASS, 1 on FAIL, 2
when a binary is missing or the options are wrong. Every process
started here is stopped by its pid; the temp dir is removed unless --keep-temp. Loopback only.
Python standard library only.
"""

import argparse
import collections
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))
sys.path.insert(0, HERE)

from browser_support import (TestFailure, begin_run, copy_shipped_config, free_port_pair, log,  # noqa: E402
                             tail, tear_down)
from app_flow import (BIG_DETAIL, BIG_WARDS, CHUNK_THRESHOLD, CHUNKED_EVERY, UPLOAD_CHUNKED,  # noqa: E402
                      UPLOAD_WHOLE, WORKERS, Dataset, LogFigures, Recorder, Rig, UsageError, User, mib,
                      missing_binaries, print_table, read_log_lines, verdict)

PROD_CONF = os.path.join(HERE, os.pardir, os.pardir, "conf", "prod.conf")
CHANGED_WORKER = "w2"
CHANGED_ARGS = "--header-timeout-ms 10000"  # the backend's default header timeout: a change, and harmless
EXTRA_WORKER = "w5"
SPRAY_CONNECTIONS = 4
MOVED_SLACK = 10  # entries beyond the users' sessions (cookie-less probes, a session begun at the end)
MOVED_BYTES_PER_ENTRY = 256  # an entry is a key hash, a worker or two and times: about 150 bytes
RSS_MARGIN = 8 * 1024 * 1024  # plus 10% of the peak before the sprayer
RSS_EVERY = 1.0
MOVED_EVERY = 2.0
HANG_SECONDS = 10.0
RELOAD_WAIT = 30.0  # a reload's change shows in /status.json within this
RESTART_DRAIN_SECONDS = 5


class Settings:
    """The run's shape: what --short and the full run differ in."""

    def __init__(self, args):
        self.short = args.short
        self.users = args.users if args.users is not None else (10 if args.short else 50)
        self.duration = args.duration if args.duration is not None else (30.0 if args.short else 300.0)
        self.seed = args.seed
        self.think_min, self.think_max = (0.5, 1.5) if args.short else (1.0, 3.0)
        self.ramp = min(10.0, self.duration / 6.0)
        self.spray_total = args.spray if args.spray is not None else (3000 if args.short else 100000)
        self.settle = 5.0 if args.short else 30.0
        self.wards = 300


# ---------------------------------------------------------------------------- the schedule

class Event:
    def __init__(self, at, kind, detail=""):
        self.at = at
        self.kind = kind
        self.detail = detail
        self.outcome = "not reached"
        self.done_at = None


def make_schedule(settings):
    """The faults, in seconds from the first user's start."""
    duration = settings.duration
    events = []
    if settings.short:
        events.append(Event(settings.ramp, "spray", "%d forged cookies" % settings.spray_total))
        events.append(Event(duration * 0.3, "kill", "the worker with the most users"))
        events.append(Event(duration * 0.55, "reload-args", "%s args + %s" % (CHANGED_WORKER, CHANGED_ARGS)))
        return sorted(events, key=lambda event: event.at)

    scale = duration / 300.0
    burst_start, burst_end = 120.0 * scale, 120.0 * scale + 60.0
    at = 20.0
    while at < duration - 10.0:
        if at < burst_start or at >= burst_end:
            events.append(Event(at, "kill", "a random worker (every 20 s)"))
        at += 20.0
    at = burst_start
    while at < burst_end:
        events.append(Event(at, "kill", "a random worker (every 5 s for a minute)"))
        at += 5.0
    events.append(Event(15.0 * scale, "spray", "%d forged cookies" % settings.spray_total))
    events.append(Event(50.0 * scale, "hang", "SIGSTOP a random worker, SIGCONT after %.0f s" % HANG_SECONDS))
    events.append(Event(90.0 * scale, "reload-args", "%s args + %s" % (CHANGED_WORKER, CHANGED_ARGS)))
    events.append(Event(190.0 * scale, "rollover", "ctl restart w1..w4 %d" % RESTART_DRAIN_SECONDS))
    events.append(Event(230.0 * scale, "reload-add", "add %s" % EXTRA_WORKER))
    events.append(Event(265.0 * scale, "reload-remove", "remove %s" % EXTRA_WORKER))
    return sorted(events, key=lambda event: event.at)


class Faults(threading.Thread):
    """Carries out the schedule against the running proxy; records when and what happened."""

    def __init__(self, run, events, started):
        super().__init__(name="faults", daemon=True)
        self.run_ = run
        self.events = events
        self.started = started
        self.rng = random.Random("faults/%d" % run.settings.seed)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.busy = set()  # workers stopped (SIGSTOP) or being restarted: not killed meanwhile
        self.kills = []  # (wall time, worker, pid)
        self.helpers = []

    def run(self):
        for event in self.events:
            wait = self.started + event.at - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            try:
                started = getattr(self, "do_" + event.kind.replace("-", "_"))(event)
            except (TestFailure, OSError, ValueError, KeyError, http.client.HTTPException) as error:
                started = "FAILED: %s" % error
            with self.lock:
                # A fault finished in the background may already have its outcome: keep it.
                if event.outcome == "not reached":
                    event.outcome = started
            event.done_at = time.monotonic() - self.started
            log("t=%5.1fs %s: %s" % (event.done_at, event.kind, event.outcome))

    def stop(self):
        self.stopping.set()
        self.join(timeout=30.0)
        for helper in self.helpers:
            helper.join(timeout=120.0)

    def pick_worker(self, busiest=False):
        """A random ready worker, or with `busiest` the one most users are on (the short run's one
        kill must move sessions)."""
        workers = self.run_.rig.status()
        with self.lock:
            choices = sorted(name for name, worker in workers.items()
                             if worker.get("pid") and worker.get("state") == "ready" and name not in self.busy)
        if not choices:
            raise TestFailure("no ready worker to pick (states: %s)" % {
                name: worker.get("state") for name, worker in workers.items()})
        if busiest:
            users = collections.Counter(user.worker for user in self.run_.users)
            most = max(users[name] for name in choices)
            choices = [name for name in choices if users[name] == most]
        name = self.rng.choice(choices)
        return name, int(workers[name]["pid"])

    def child_of_proxy(self, pid):
        with open("/proc/%d/stat" % pid) as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        if parent != self.run_.rig.proxy.pid:
            raise TestFailure("pid %d is not the proxy's child (its parent is %d)" % (pid, parent))

    def do_kill(self, event):
        name, pid = self.pick_worker(busiest=self.run_.settings.short)
        self.child_of_proxy(pid)
        self.kills.append((time.time(), name, pid))
        os.kill(pid, signal.SIGKILL)
        return "kill -9 %s (pid %d)" % (name, pid)

    def do_hang(self, event):
        name, pid = self.pick_worker()
        self.child_of_proxy(pid)
        with self.lock:
            self.busy.add(name)
        os.kill(pid, signal.SIGSTOP)

        def resume():
            self.stopping.wait(HANG_SECONDS)
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            with self.lock:
                self.busy.discard(name)
            log("t=%5.1fs hang: SIGCONT %s (pid %d)" % (time.monotonic() - self.started, name, pid))

        helper = threading.Thread(target=resume, name="sigcont", daemon=True)
        helper.start()
        self.helpers.append(helper)
        return "SIGSTOP %s (pid %d) for %.0f s" % (name, pid, HANG_SECONDS)

    def do_rollover(self, event):
        def roll():
            results = []
            for name in WORKERS:
                with self.lock:
                    self.busy.add(name)
                began = time.monotonic()
                try:
                    code, text = self.run_.ctl(["restart", name, str(RESTART_DRAIN_SECONDS)], timeout=120.0)
                finally:
                    with self.lock:
                        self.busy.discard(name)
                results.append("%s: exit %d in %.1f s (%s)" % (name, code, time.monotonic() - began,
                                                               text.strip().replace("\n", " ")[:80]))
                if code != 0:
                    self.run_.problems.append("ctl restart %s exited %d: %s" % (name, code, text.strip()))
            with self.lock:
                event.outcome = "; ".join(results)
            log("t=%5.1fs rollover: %s" % (time.monotonic() - self.started, event.outcome))

        helper = threading.Thread(target=roll, name="rollover", daemon=True)
        helper.start()
        self.helpers.append(helper)
        return "started (ctl restart w1..w4 in turn, in the background)"

    def in_background(self, event, what, condition, done):
        """Waits for `condition` on /status.json off the schedule's thread (the next faults keep
        their times); the event's outcome is `done(workers)` or FAILED after RELOAD_WAIT seconds."""
        def wait():
            try:
                outcome = done(self.run_.wait_status(condition, what, RELOAD_WAIT))
            except (TestFailure, OSError, ValueError, KeyError, http.client.HTTPException) as error:
                outcome = "FAILED: %s" % error
            with self.lock:
                event.outcome = outcome
            log("t=%5.1fs %s: %s" % (time.monotonic() - self.started, event.kind, event.outcome))

        helper = threading.Thread(target=wait, name="reload-wait", daemon=True)
        helper.start()
        self.helpers.append(helper)
        return "pending: SIGHUP sent, waiting for %s" % what

    def do_reload_args(self, event):
        before = self.run_.rig.status()[CHANGED_WORKER].get("pid")
        self.run_.reload({"worker %s.args" % CHANGED_WORKER: self.run_.worker_args + " " + CHANGED_ARGS})
        return self.in_background(
            event, "%s restarted with its new args" % CHANGED_WORKER,
            lambda workers: CHANGED_WORKER in workers and workers[CHANGED_WORKER].get("pid") not in (None, 0, before)
            and workers[CHANGED_WORKER].get("state") == "ready",
            lambda workers: "SIGHUP: %s restarted with its new args (pid %s -> %s)" % (
                CHANGED_WORKER, before, workers[CHANGED_WORKER]["pid"]))

    def do_reload_add(self, event):
        self.run_.reload(self.run_.extra_worker())
        return self.in_background(event, "%s ready" % EXTRA_WORKER,
                                  lambda workers: workers.get(EXTRA_WORKER, {}).get("state") == "ready",
                                  lambda workers: "SIGHUP: %s added and ready" % EXTRA_WORKER)

    def do_reload_remove(self, event):
        self.run_.reload({}, drop_section="worker %s" % EXTRA_WORKER)
        return self.in_background(event, "%s gone" % EXTRA_WORKER, lambda workers: EXTRA_WORKER not in workers,
                                  lambda workers: "SIGHUP: %s removed" % EXTRA_WORKER)

    def do_spray(self, event):
        self.run_.sprayer.begin()
        return "sprayer started (%d connections)" % SPRAY_CONNECTIONS


# ---------------------------------------------------------------------------- forged cookies

class Sprayer:
    """GET /ping with a made-up routing cookie per request, on several keep-alive connections."""

    KINDS = ("bare 32 hex", "K.M, wrong MAC", "K.W.T.M, wrong MAC")

    def __init__(self, port, total, seed, workers):
        self.port = port
        self.total = total
        self.seed = seed
        self.workers = workers
        self.lock = threading.Lock()
        self.sent = 0
        self.statuses = collections.Counter()
        self.cookies_set = collections.Counter()  # kind -> answers that set a new routing cookie
        self.failures = collections.Counter()
        self.threads = []
        self.started_at = self.ended_at = None
        self.stopping = threading.Event()

    def begin(self):
        self.started_at = time.monotonic()
        for number in range(SPRAY_CONNECTIONS):
            thread = threading.Thread(target=self.spray, args=(number,), name="sprayer-%d" % number, daemon=True)
            thread.start()
            self.threads.append(thread)
        watcher = threading.Thread(target=self.watch, name="sprayer-end", daemon=True)
        watcher.start()

    def watch(self):
        for thread in self.threads:
            thread.join()
        self.ended_at = time.monotonic()

    def take(self):
        with self.lock:
            if self.sent >= self.total or self.stopping.is_set():
                return None
            self.sent += 1
            return self.sent

    def forged(self, rng, number):
        kind = number % len(self.KINDS)
        key = "%032x" % rng.getrandbits(128)
        wrong = "%032x" % rng.getrandbits(128)
        if kind == 0:
            return kind, key
        if kind == 1:
            return kind, "%s.%s" % (key, wrong)
        return kind, "%s.%s.%x.%s" % (key, rng.choice(self.workers), int(time.time()), wrong)

    def spray(self, number):
        rng = random.Random("spray/%d/%d" % (self.seed, number))
        connection = None
        while True:
            index = self.take()
            if index is None:
                break
            kind, value = self.forged(rng, index)
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30.0)
                connection.request("GET", "/ping", headers={"Cookie": "stickyproxy=" + value})
                response = connection.getresponse()
                response.read()
                set_cookie = " ".join(response.msg.get_all("Set-Cookie") or [])
                with self.lock:
                    self.statuses[response.status] += 1
                    if "stickyproxy=" in set_cookie:
                        self.cookies_set[kind] += 1
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                with self.lock:
                    self.failures[type(error).__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60.0)


# ---------------------------------------------------------------------------- samplers

def rss_of(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def moved_keys_figures(path):
    """(entries, bytes) of a moved-keys.json, or None when there is none (yet) or it is mid-write."""
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError:
        return None
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    if isinstance(document, dict):
        entries = document.get("entries")
        if not isinstance(entries, list):
            entries = [value for value in document.values() if isinstance(value, (list, dict))]
    else:
        entries = document
    return len(entries), len(data)


class Samplers(threading.Thread):
    """The proxy's RSS every RSS_EVERY and moved-keys.json every MOVED_EVERY, with their times."""

    def __init__(self, proxy_pid, moved_path, started):
        super().__init__(name="samplers", daemon=True)
        self.proxy_pid = proxy_pid
        self.moved_path = moved_path
        self.started = started
        self.rss = []  # (t, bytes)
        self.moved = []  # (t, entries, bytes)
        self.stopping = threading.Event()

    def run(self):
        next_moved = 0.0
        while True:
            now = time.monotonic() - self.started
            value = rss_of(self.proxy_pid)
            if value is not None:
                self.rss.append((now, value))
            if now >= next_moved:
                figures = moved_keys_figures(self.moved_path)
                if figures is not None:
                    self.moved.append((now,) + figures)
                next_moved = now + MOVED_EVERY
            if self.stopping.wait(RSS_EVERY):
                return

    def stop(self):
        self.stopping.set()
        self.join(timeout=10.0)


# ---------------------------------------------------------------------------- the run

class FaultRun:
    def __init__(self, args, settings, build_dir, work_dir, processes):
        self.args = args
        self.settings = settings
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.rig = Rig(build_dir, work_dir, processes)
        self.problems = []  # things the faults or the run itself could not do
        self.worker_args = None
        self.port = self.metrics_port = None
        self.reload_lock = threading.Lock()
        self.overrides = {}  # what the reloads changed in the copy, kept by the next ones

    # -- the proxy

    def start(self, deadline):
        self.port, self.metrics_port = free_port_pair()
        config = copy_shipped_config(PROD_CONF, self.work_dir, self.build_dir, self.port, self.metrics_port)
        with open(config) as written:
            match = re.search(r"^\[worker %s\]\s*$(.*?)^args = (.*?)$" % CHANGED_WORKER, written.read(), re.M | re.S)
        if not match:
            raise UsageError("%s has no args for worker %s" % (PROD_CONF, CHANGED_WORKER))
        self.worker_args = match.group(2).split(" #")[0].strip()
        self.rig.start_with(deadline, config, self.port, self.metrics_port)

    def extra_worker(self):
        section = "worker %s" % EXTRA_WORKER
        return {section + ".address": "unix:" + os.path.join(self.work_dir, "run", EXTRA_WORKER + ".sock"),
                section + ".command": os.path.join(self.build_dir, "stickyproxy-backend"),
                section + ".args": self.worker_args}

    def reload(self, changes, drop_section=None):
        """Rewrites the config with the changes so far plus `changes` ("section.key": value), less
        the keys of `drop_section`, and sends SIGHUP."""
        with self.reload_lock:
            self.overrides.update(changes)
            for dotted in [name for name in self.overrides if name.rsplit(".", 1)[0] == drop_section]:
                del self.overrides[dotted]
            copy_shipped_config(PROD_CONF, self.work_dir, self.build_dir, self.port, self.metrics_port,
                                overrides=self.overrides)
            os.kill(self.rig.proxy.pid, signal.SIGHUP)

    def wait_status(self, condition, what, seconds=60.0):
        end = time.monotonic() + seconds
        last = None
        while time.monotonic() < end:
            try:
                last = self.rig.status()
                if condition(last):
                    return last
            except (OSError, TestFailure, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        raise TestFailure("no %s within %.0f s (workers: %s)" % (what, seconds, {
            name: (worker.get("state"), worker.get("pid")) for name, worker in (last or {}).items()}))

    def ctl(self, words, timeout):
        argv = [os.path.join(self.build_dir, "stickyproxy"), "ctl", "-c", self.rig.config] + words
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "no answer within %.0f s" % timeout
        return done.returncode, done.stdout + done.stderr

    # -- the run

    def go(self, deadline):
        settings = self.settings
        small = Dataset(self.build_dir, os.path.join(self.work_dir, "data-small"), settings.seed, settings.wards,
                        None, deadline.cap(60.0))
        big = Dataset(self.build_dir, os.path.join(self.work_dir, "data-big"), settings.seed + 1, BIG_WARDS,
                      BIG_DETAIL, deadline.cap(60.0))
        if len(big.zip) <= CHUNK_THRESHOLD:
            raise UsageError("gendata made a %d byte zip: not over 5 MB, so the page would not chunk it" % len(big.zip))
        self.data = {UPLOAD_WHOLE: small, UPLOAD_CHUNKED: big}
        self.start(deadline)
        self.sprayer = Sprayer(self.port, settings.spray_total, settings.seed, WORKERS)
        self.events = make_schedule(settings)
        self.print_schedule()

        started = time.monotonic()
        self.started = started
        self.recorder = Recorder(started, moves_expected=True)
        stop_at = started + settings.duration
        hard_stop = started + max(settings.duration + 60.0, deadline.remaining() - 45.0)
        self.users = [User(index, self, self.port, self.data, self.recorder,
                           started + settings.ramp * index / settings.users, stop_at, hard_stop, finish_flows=True)
                      for index in range(settings.users)]
        self.samplers = Samplers(self.rig.proxy.pid, os.path.join(self.work_dir, "state", "moved-keys.json"), started)
        self.faults = Faults(self, self.events, started)
        self.samplers.start()
        for user in self.users:
            user.start()
        self.faults.start()
        for user in self.users:
            user.join(timeout=max(0.0, hard_stop - time.monotonic() + 5.0))
        self.users_done = time.monotonic() - started
        self.faults.stop()
        # The sprayer finishes its count; then the proxy is given settings.settle seconds to give memory back.
        self.wait_for_sprayer(deadline)
        settle_until = time.monotonic() + max(0.0, settings.settle - (time.monotonic() - self.sprayer_end_abs()))
        while time.monotonic() < settle_until + 3 * RSS_EVERY and deadline.remaining() > 20.0:
            time.sleep(0.2)
        self.samplers.stop()
        self.window = time.monotonic() - started
        self.log = LogFigures(read_log_lines(self.rig.proxy_log), self.faults.kills)
        return self.report()

    # the attributes User reads from its `args`
    @property
    def seed(self):
        return self.settings.seed

    @property
    def think_min(self):
        return self.settings.think_min

    @property
    def think_max(self):
        return self.settings.think_max

    def wait_for_sprayer(self, deadline):
        if self.sprayer.started_at is None:
            self.problems.append("the sprayer never started (its event was not reached)")
            return
        end = time.monotonic() + deadline.cap(max(30.0, deadline.remaining() - 40.0))
        while self.sprayer.ended_at is None and time.monotonic() < end:
            time.sleep(0.2)
        if self.sprayer.ended_at is None:
            self.problems.append("the sprayer had not sent its %d requests by the deadline (%d sent)"
                                 % (self.sprayer.total, self.sprayer.sent))
            self.sprayer.stop()

    def sprayer_end_abs(self):
        return self.sprayer.ended_at if self.sprayer.ended_at is not None else time.monotonic()

    # -- the figures

    def print_schedule(self):
        rows = [["%.0f s" % event.at, event.kind, event.detail] for event in self.events]
        print_table("the schedule (%d users for %.0f s, a flow under way at the end is finished; seed %d)"
                    % (self.settings.users, self.settings.duration, self.settings.seed),
                    ["at", "fault", "what"], rows, align="rll")

    def report(self):
        settings = self.settings
        recorder = self.recorder
        log_figures = self.log
        flows_begun = sum(user.flow_number for user in self.users)
        flows_done = sum(user.flows_done for user in self.users)
        stuck = [user.name for user in self.users if user.is_alive()]
        crashed = [user.crashed for user in self.users if user.crashed]
        failed_requests = sum(recorder.route_errors.values())
        failed_uploads = sum(recorder.failed_uploads.values())

        rows = [[event.done_at is not None and "%.1f s" % event.done_at or "-", event.kind, event.outcome]
                for event in self.events]
        print_table("what was done (seconds from the first user's start)", ["at", "fault", "outcome"], rows,
                    align="rll")

        spray = self.sprayer
        spray_seconds = (spray.ended_at - spray.started_at) if spray.ended_at and spray.started_at else float("nan")
        kinds = ", ".join("%s: %d" % (kind, spray.cookies_set[number]) for number, kind in enumerate(Sprayer.KINDS))
        rows = [
            ["requests sent", "%d of %d in %.1f s on %d connections" % (spray.sent, spray.total, spray_seconds,
                                                                         SPRAY_CONNECTIONS)],
            ["answers by status", ", ".join("%s: %d" % item for item in sorted(spray.statuses.items())) or "none"],
            ["no answer", ", ".join("%s: %d" % item for item in sorted(spray.failures.items())) or "0"],
            ["answers that set a fresh routing cookie", kinds],
        ]
        print_table("the sprayer (made-up stickyproxy cookies, GET /ping)", ["figure", "value"], rows, align="ll")

        real_sessions = len({user.proxy_key for user in self.users if user.proxy_key})
        entry_bound = max(real_sessions, settings.users) + MOVED_SLACK
        byte_bound = 1024 + entry_bound * MOVED_BYTES_PER_ENTRY
        moved = self.samplers.moved
        peak_entries = max((sample[1] for sample in moved), default=0)
        peak_bytes = max((sample[2] for sample in moved), default=0)
        moved_ok = peak_entries <= entry_bound and peak_bytes <= byte_bound
        rows = []
        for at, entries, size in self.thin(moved, 12):
            rows.append(["%.0f s" % at, entries, "%d B" % size])
        print_table("<state_dir>/moved-keys.json (sampled every %.0f s; %d samples, a few shown)"
                    % (MOVED_EVERY, len(moved)), ["at", "entries", "size"], rows or [["-", "-", "no file yet"]],
                    ["peak %d entries, %d bytes; bound: the users' %d sessions + %d = %d entries, %d bytes"
                     % (peak_entries, peak_bytes, real_sessions, MOVED_SLACK, entry_bound, byte_bound)])

        rss = self.samplers.rss
        spray_start = (spray.started_at - self.started) if spray.started_at else None
        spray_end = (spray.ended_at - self.started) if spray.ended_at else None
        before = [value for at, value in rss if spray_start is not None and at < spray_start]
        during = [value for at, value in rss if spray_start is not None and spray_end is not None
                  and spray_start <= at <= spray_end]
        after = sorted(value for at, value in rss if spray_end is not None and at >= spray_end + settings.settle)
        rss_before = max(before) if before else None
        rss_during = max(during) if during else None
        rss_after = after[len(after) // 2] if after else None
        margin = RSS_MARGIN + (rss_before or 0) // 10
        rss_ok = rss_before is not None and rss_after is not None and rss_after <= rss_before + margin
        rows = [
            ["before the sprayer (peak)", mib(rss_before), "%d samples" % len(before)],
            ["while it ran (peak)", mib(rss_during), "%d samples" % len(during)],
            ["%.0f s and more after it ended (median)" % settings.settle, mib(rss_after), "%d samples" % len(after)],
            ["allowed after", mib(rss_before + margin) if rss_before is not None else "-",
             "before + %s + 10%%" % mib(RSS_MARGIN)],
        ]
        print_table("the proxy's RSS (VmRSS, every %.0f s)" % RSS_EVERY, ["when", "RSS", "samples"], rows)

        adopted_total = sum(log_figures.adopted.values())
        rows = [
            ["access-log lines", log_figures.requests],
            ["session keys seen", log_figures.sessions],
            ["moves seen (a session's request on another worker than its previous one)", log_figures.moves],
            ["moves announced (prev= the previous worker)", log_figures.announced],
            ["moves unannounced", len(log_figures.unannounced)],
            ["moves announced with a wrong prev=", len(log_figures.wrong_prev)],
            ["prev= without a move", log_figures.prev_without_move],
            ["app adoptions (\"adopted session ... from wN\")", "%d (%s)" % (adopted_total, ", ".join(
                "from %s: %d" % item for item in sorted(log_figures.adopted.items())) or "none")],
            ["users' own worker changes (X-Worker)", recorder.worker_changes],
            ["kill -9 sent", len(self.faults.kills)],
            ["upload requests in flight at a kill", "%d (statuses: %s)" % (log_figures.uploads_at_kill, ", ".join(
                "%s: %d" % item for item in sorted(log_figures.upload_statuses_at_kill.items())) or "none")],
            ["access-log lines with status >= 500", len(log_figures.server_errors)],
        ]
        print_table("moves (from the proxy's access log; workers' adoptions from their stderr)", ["figure", "value"],
                    rows, align="lr")

        texts = ", ".join("%r x %d" % item for item in sorted(recorder.texts_seen.items())) or "none"
        rows = [
            ["flows begun / finished", "%d / %d (%d whole-upload, %d chunked finished)" % (
                flows_begun, flows_done, recorder.flows[UPLOAD_WHOLE], recorder.flows[UPLOAD_CHUNKED])],
            ["requests", "%d (%d sent again on a new connection: the kept-alive one was closed, as a browser "
                         "does)" % (recorder.requests, recorder.resent)],
            ["chat answers cut by a kill, asked again as the page does", "%d" % recorder.reasked],
            ["failed requests", "%d" % failed_requests],
            ["failed uploads (whole / chunked)", "%d / %d of %d / %d" % (
                recorder.failed_uploads[UPLOAD_WHOLE], recorder.failed_uploads[UPLOAD_CHUNKED],
                recorder.uploads[UPLOAD_WHOLE], recorder.uploads[UPLOAD_CHUNKED])],
            ["session errors", "%d (texts seen: %s)" % (recorder.session_errors, texts)],
        ]
        print_table("the users (%d, every %dth uploads in chunks)" % (settings.users, CHUNKED_EVERY),
                    ["figure", "value"], rows, align="ll")
        if recorder.samples:
            print("\n  first failures:")
            for sample in recorder.samples:
                print("    " + sample)
        for title, lines in (("unannounced moves", log_figures.unannounced),
                             ("moves with a wrong prev=", log_figures.wrong_prev),
                             ("5xx answers", log_figures.server_errors)):
            if lines:
                print("\n  %s (first 8 of %d):" % (title, len(lines)))
                for line in lines[:8]:
                    print("    " + line)
        if crashed:
            print("\n  users stopped by an error of this script:\n    " + "\n    ".join(crashed))
        if stuck:
            print("\n  users still waiting for an answer at the end: %s" % ", ".join(stuck))

        faults_failed = [event for event in self.events
                         if event.outcome.startswith(("FAILED", "not reached", "pending", "started"))]
        checks = [
            ["every flow begun finished", "%d of %d" % (flows_done, flows_begun),
             flows_done == flows_begun and not stuck and not crashed],
            ["no failed request", str(failed_requests), failed_requests == 0 and failed_uploads == 0],
            ["no session error", str(recorder.session_errors), recorder.session_errors == 0],
            ["every move announced", "%d of %d (%d unannounced, %d wrong prev=)" % (
                log_figures.announced, log_figures.moves, len(log_figures.unannounced), len(log_figures.wrong_prev)),
             not log_figures.unannounced and not log_figures.wrong_prev],
            ["moved-keys.json within the sessions + slack", "peak %d entries / %d B (bound %d / %d)" % (
                peak_entries, peak_bytes, entry_bound, byte_bound), moved_ok],
            ["RSS flat after the sprayer", "%s after, %s before" % (mib(rss_after), mib(rss_before)), rss_ok],
            ["every fault carried out", "%d of %d%s" % (len(self.events) - len(faults_failed), len(self.events),
                                                        "; " + "; ".join(self.problems) if self.problems else ""),
             not faults_failed and not self.problems],
        ]
        print_table("verdict", ["check", "figure", "verdict"],
                    [[name, figure, verdict(holds)] for name, figure, holds in checks], align="lll")
        return all(holds for _, _, holds in checks)

    @staticmethod
    def thin(samples, count):
        if len(samples) <= count:
            return samples
        step = len(samples) / float(count)
        picked = [samples[int(index * step)] for index in range(count)]
        return picked[:-1] + [samples[-1]]


# ---------------------------------------------------------------------------- main

def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True,
                        help="the directory with stickyproxy, stickyproxy-backend and stickyproxy-gendata")
    parser.add_argument("--short", action="store_true",
                        help="the ctest version: 10 users for 30 s, one kill, one reload, 3,000 forged cookies")
    parser.add_argument("--users", type=int, help="simulated users (default 50, 10 with --short)")
    parser.add_argument("--duration", type=float,
                        help="seconds users start flows for (default 300, 30 with --short)")
    parser.add_argument("--seed", type=int, default=7, help="gendata seed, users', faults' and sprayer's (default 7)")
    parser.add_argument("--spray", type=int, help="forged-cookie requests (default 100000, 3000 with --short)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (config, proxy log, data)")
    parser.add_argument("--timeout", type=float, help="bound on the whole run, seconds "
                                                      "(default: duration + 240, + 120 with --short)")
    args = parser.parse_args()
    if args.users is not None and args.users < 1:
        parser.error("--users must be at least 1")
    if args.duration is not None and args.duration < (10 if args.short else 60):
        parser.error("--duration must be at least 10 s (--short) or 60 s")
    if not args.short and args.duration is not None and args.duration < 300:
        log("note: --duration %.0f is under the 5 minutes the full fault run is meant to take" % args.duration)
    if args.spray is not None and args.spray < 1:
        parser.error("--spray must be at least 1")
    return args


def without_asan_quarantine():
    """In a build with AddressSanitizer, freed memory waits in a quarantine (256 MB by default)
    before it is reused, and the RSS check would read that as growth: the processes this run starts
    reuse freed memory at once instead. Leak detection and every other check stay on; without
    AddressSanitizer the variable is read by nobody."""
    options = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (options + ":" if options else "") + "quarantine_size_mb=0"


def main():
    args = parse_arguments()
    without_asan_quarantine()
    settings = Settings(args)
    timeout = args.timeout or settings.duration + (120.0 if args.short else 240.0)
    build_dir = os.path.abspath(args.build_dir)
    missing = missing_binaries(build_dir)
    if missing:
        print("fault_run: missing: %s (build them first)" % ", ".join(missing), file=sys.stderr)
        return 2
    deadline, work_dir, processes = begin_run(timeout, "sp-fault-run-")
    run = FaultRun(args, settings, build_dir, work_dir, processes)
    try:
        passed = run.go(deadline)
        log("%s in %.1f s" % ("PASS" if passed else "FAIL", timeout - deadline.remaining()))
        return 0 if passed else 1
    except UsageError as problem:
        print("fault_run: %s" % problem, file=sys.stderr)
        return 2
    except (TestFailure, OSError, http.client.HTTPException, ValueError) as failure:
        log("FAIL: %s" % failure)
        print(tail(run.rig.proxy_log, 30), file=sys.stderr)
        return 1
    finally:
        if getattr(run, "sprayer", None) is not None:
            run.sprayer.stop()
        if getattr(run, "faults", None) is not None:
            run.faults.stopping.set()
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
