#!/usr/bin/env python3
"""stickyproxy side by side with HAProxy and nginx, each set up for cookie stickiness, on the same
four workers: req/s, latency, CPU and memory per proxy, as ratios to stickyproxy.

    python3 tests/load/peer_benchmark.py --build-dir build [--seconds 10] [--rounds 3]
        [--scenario small|large|new-sessions ...] [--timeout 900] [--keep-temp]
    python3 tests/load/peer_benchmark.py --build-dir build --workers nginx [--upload-mib 100]
        [--scenario small|small-200|64k ...] [--perf-record FILE] ...

With --workers nginx (issue 11's table) the workers are conf/bench.conf's external ones on
127.0.0.1:9001-9004, served by one nginx started here, stickyproxy runs `-c conf/bench.conf` as
it is, HAProxy and nginx hash the `sid` cookie, and the output ends with the issue's goals as
PASS/FAIL lines and 100 MiB uploads (direct and through each proxy); --perf-record profiles
stickyproxy afterwards. What follows describes the default, --workers test-worker.

An on-demand benchmark, not part of ctest: it needs Debian's `haproxy`, `nginx` and `wrk`, and takes
about five minutes with the defaults. In a temp dir it starts build/stickyproxy (config written by
write_proxy_config: four build/test-worker workers on Unix sockets, started and supervised by the
proxy, its listener on a kernel-chosen 127.0.0.1 port, health checks every 2 s), then HAProxy and
nginx in the foreground with configs written there, on other free 127.0.0.1 ports, proxying to the
SAME four Unix sockets. Each peer is set up for stickiness as its users would do it:

  - HAProxy (-W, master and one worker): nbthread 1 (stickyproxy runs one event loop),
    `balance roundrobin` + `cookie SERVERID insert indirect nocache`, http-reuse safe, keep-alive on
    both sides, HTTP health checks every 2 s, no logging.
  - nginx (master and one worker): worker_processes 1, `hash $cookie_stickyproxy consistent`,
    `keepalive 32` to the workers, proxy_http_version 1.1 with an empty Connection header,
    access_log off, error log and pid file in the temp dir; responses are buffered in memory only
    (proxy_max_temp_file_size 0: the others stream with bounded buffers and write no temp files),
    in its default proxy buffers (8 x one memory page).
  - stickyproxy: one access-log line per request on stdout, which goes to /dev/null (it has no
    switch to turn the log off; the peers keep none); its stderr goes to the temp dir.

All three add X-Forwarded-For/-Proto/-Host. Before measuring, it checks that each proxy sticks:
eight cookie-jar sessions make 20 GET /whoami each and every one stays on one worker (stickyproxy
and HAProxy set their cookie on the first answer; nginx's sessions send a fixed
signed `stickyproxy` cookie), and that the 50 cookies of the wrk script are honoured (no new cookie
set; HAProxy answers from the worker its SERVERID names).

Scenarios, each run for every proxy in turn (stickyproxy, haproxy, nginx, then again) for --rounds
rounds of --seconds each, all with wrk -t2 and keep-alive:

  small          GET /ping, -c50, every request with one of 50 fixed sessions
                 (Cookie: stickyproxy=<signed cookie>; SERVERID=wN, the same bytes to every proxy;
                 signed under the routing.secret_file written for stickyproxy)
  large          GET /big?bytes=1048576 (1 MiB bodies), -c16, the same 50 sessions
  new-sessions   GET /ping, -c50, no cookie: every request starts a session (nginx has no
                 sessions to start: the empty cookie hashes every request to one worker)

Per run: wrk's req/s, p50 and p99 (--latency) and failures (non-2xx answers and socket errors);
the CPU seconds (utime + stime from /proc/PID/stat) the proxy's processes used during the run,
divided by the requests served; the peak of their resident memory (VmRSS, sampled every 100 ms)
and how much it grew within the run. The proxy's processes are stickyproxy alone (not its
workers), HAProxy's master and worker, and nginx's master and worker.

How to read the tables: one per scenario, one line per proxy, the median of its runs (RSS and
+MiB: the peak over them). stickyproxy keeps every session it starts for routing.session_idle,
so its RSS after a new-sessions run stays up in the runs that follow: +MiB is what one run
added. The ratio columns divide each proxy's figure by stickyproxy's: req/s ÷ sp above
1 means the peer served more, p99 ÷ sp and CPU ÷ sp below 1 mean the peer answered faster or
spent less CPU per request. On a small shared machine wrk, the proxy and the four workers compete
for the same cores, so every figure moves with whatever else runs, CPU per request less than
req/s. The lines under each table say how much: the req/s spread over the rounds, and the CPU
ratio round by round (the proxies of one round ran a few seconds apart, under much the same
load). Ratios, not absolute numbers, are the result.

Exit status 0 when every run had no failed request and every stickiness check held, 1 otherwise
(printed), 2 when a binary is missing (stickyproxy, test-worker, haproxy, nginx or wrk). Every
process started here is stopped by its pid and the temp dir removed. Loopback only. Python
standard library only, plus the haproxy, nginx and wrk binaries.
"""

import argparse
import collections
import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import (RoutingSecret, TestFailure, begin_run, cookie_as_issued, free_tcp_port, log,  # noqa: E402
                             tail, tear_down, write_proxy_config)
from wrk_support import WrkRun, ms, print_table, wrk_failures  # noqa: E402

WORKERS = ["w1", "w2", "w3", "w4"]
COOKIE = "stickyproxy"  # write_proxy_config's routing.cookie_name; nginx hashes the same cookie
HAPROXY_COOKIE = "SERVERID"
PROXIES = ["stickyproxy", "haproxy", "nginx"]
BASELINE = "stickyproxy"
WRK_THREADS = 2
SESSIONS = 50  # the fixed sessions of the wrk script, SESSIONS // WRK_THREADS per wrk thread
WARMUP_SECONDS = 2
PAUSE_BETWEEN_RUNS = 0.5
STICKY_SESSIONS = 8
STICKY_REQUESTS = 20
RSS_SAMPLE_INTERVAL = 0.1
HEALTH_CHECK_INTERVAL = "2s"  # stickyproxy's default; HAProxy checks as often
SEARCH_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"

# gzip: wrk asks Accept-Encoding: gzip, and each proxy compresses what the workers send: HAProxy
# and nginx at their fastest level (1), stickyproxy at conf/bench.conf's `level = 0` (one pass with
# deflate's fixed codes, as HAProxy's libslz).
Scenario = collections.namedtuple("Scenario", "name path connections sessions what gzip", defaults=(False,))
SCENARIOS = collections.OrderedDict((s.name, s) for s in [
    Scenario("small", "/ping", 50, True, "GET /ping, keep-alive, 50 fixed sessions"),
    Scenario("large", "/big?bytes=1048576", 16, True, "GET /big?bytes=1048576 (1 MiB bodies), 50 fixed sessions"),
    Scenario("new-sessions", "/ping", 50, False, "GET /ping without a cookie: every request a new session"),
])
# --workers nginx: conf/bench.conf's external workers, served by nginx (nginx_workers_config()).
NGINX_WORKER_SCENARIOS = collections.OrderedDict((s.name, s) for s in [
    Scenario("small", "/ping", 50, True, "GET /ping (100 B), keep-alive, 50 fixed sid sessions"),
    Scenario("small-200", "/ping", 200, True, "GET /ping (100 B), keep-alive, 50 fixed sid sessions"),
    Scenario("64k", "/64k", 50, True, "GET /64k (64 KiB bodies), keep-alive, 50 fixed sid sessions"),
    Scenario("64k-gzip", "/64k.html", 50, True, "GET /64k.html (64 KiB of SVG-like HTML) with Accept-Encoding: gzip, "
             "each proxy at its fastest level (stickyproxy 0, the others 1); 50 fixed sid sessions", gzip=True),
])
BENCH_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "conf", "bench.conf")
BENCH_LISTEN = 8083  # conf/bench.conf's listener, metrics listener and worker ports
BENCH_METRICS = 9093
BENCH_WORKER_PORTS = [9001, 9002, 9003, 9004]
SID_COOKIE = "sid"  # conf/bench.conf's routing.app_cookie_name; HAProxy and nginx hash it too
SMALL_BODY = b"p" * 99 + b"\n"
LARGE_BODY_BYTES = 64 * 1024

# The goals for --workers nginx: (scenario, figure, peer, most or least ratio of stickyproxy
# to that peer). A figure of "rss" compares with a fixed MiB bound instead (peer None).
GOALS = [
    ("small", "rps", "haproxy", ">=", 1.2),
    ("small", "cpu_us", "haproxy", "<=", 0.8),
    ("small-200", "rps", "haproxy", ">=", 1.2),
    ("small-200", "p99", "haproxy", "<=", 1.0),
    ("small-200", "cpu_us", "haproxy", "<=", 0.8),
    ("small-200", "rss", None, "<=", 16.0),
    ("64k", "rps", "nginx", ">=", 1.2),
]

# The fixed sessions: wrk's Lua sees threads, not connections, so each thread takes its share of
# the sessions in turn. Python writes the Cookie headers into the script (wrk_script()): the
# stickyproxy cookie signed under the routing.secret_file stickyproxy runs with (it replaces a
# value that fails its MAC with a fresh key), sent to stickyproxy once and kept as it gave it back
# (pinned to its worker), the same bytes to every proxy; SERVERID spreads them over the workers as
# HAProxy's roundrobin would have.
WRK_SCRIPT = """-- Written by tests/load/peer_benchmark.py: fixed sessions, session_cookie() there.
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
  accept = args[1]  -- "gzip" for the compression scenario, else nil (no Accept-Encoding)
end

function request()
  turn = turn %% #cookies + 1
  return wrk.format("GET", nil, {Cookie = cookies[turn], ["Accept-Encoding"] = accept})
end
"""


def fixed_sessions(bench):
    """The routing cookie of each fixed session (from 1) as stickyproxy issues it: signed under its
    secret, sent once, kept as it came back. With --workers nginx: the session's Cookie header, its
    sid and the routing cookie stickyproxy set on its first request, as a browser would hold them."""
    if bench.external:
        port = bench.proxies["stickyproxy"].port
        sessions = {}
        for session in range(1, SESSIONS + 1):
            sid = {SID_COOKIE: "%032x" % int.from_bytes(os.urandom(16), "big")}
            status, _, set_cookies = one_request(port, "/ping", sid)
            if status != 200 or COOKIE not in set_cookies:
                raise TestFailure("stickyproxy answered a new sid session %d and set %s" % (status, set_cookies))
            sessions[session] = "%s=%s; %s=%s" % (SID_COOKIE, sid[SID_COOKIE], COOKIE, set_cookies[COOKIE])
        return sessions
    port = bench.proxies["stickyproxy"].port
    return {session: cookie_as_issued(port, bench.secret.cookie("bench-%d" % session))
            for session in range(1, SESSIONS + 1)}


def session_cookie(sessions, session, external=False):
    """The Cookie header WRK_SCRIPT sends for fixed session `session` (from 1) of fixed_sessions()."""
    if external:
        return sessions[session]
    return "%s=%s; %s=%s" % (COOKIE, sessions[session], HAPROXY_COOKIE, WORKERS[(session - 1) % len(WORKERS)])


def wrk_script(sessions, external):
    per_thread = SESSIONS // WRK_THREADS
    rows = []
    for thread in range(WRK_THREADS):
        headers = ", ".join('"%s"' % session_cookie(sessions, thread * per_thread + n, external)
                            for n in range(1, per_thread + 1))
        rows.append("  {%s}," % headers)
    return WRK_SCRIPT % "\n".join(rows)


# ---- the proxies ----

class RunningProxy:
    """One proxy under test: its listener, the process we started, and the processes whose CPU and
    memory count (the one we started, plus its children for HAProxy's and nginx's workers)."""

    def __init__(self, name, port, process, log_path, with_children):
        self.name = name
        self.port = port
        self.process = process
        self.log_path = log_path
        self.with_children = with_children

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def pids(self):
        if not self.with_children:
            return [self.process.pid]
        return [self.process.pid] + child_pids(self.process.pid)


class Bench:
    """The temp dir, the processes started in it, and where each piece lives."""

    def __init__(self, build_dir, work_dir, processes, external=False):
        self.build_dir = build_dir
        self.external = external  # --workers nginx: conf/bench.conf's workers on BENCH_WORKER_PORTS
        self.work_dir = work_dir
        self.processes = processes
        self.run_dir = os.path.join(work_dir, "run")
        self.wrk_script = os.path.join(work_dir, "fixed_sessions.lua")
        self.secret = RoutingSecret(work_dir)  # stickyproxy's routing.secret_file
        self.sessions = {}  # fixed_sessions()
        self.proxies = collections.OrderedDict()
        self.ports = set()
        self.upload_dir = None  # --workers nginx: where the upload sink writes, removed at the end

    def worker_socket(self, worker):
        return os.path.join(self.run_dir, "%s.sock" % worker)  # write_proxy_config's worker addresses

    def worker_address(self, worker, unix_prefix):
        """Where `worker` listens, as HAProxy (unix_prefix "unix@") or nginx ("unix:") writes it."""
        if self.external:
            return "127.0.0.1:%d" % BENCH_WORKER_PORTS[WORKERS.index(worker)]
        return unix_prefix + self.worker_socket(worker)

    def path(self, name):
        return os.path.join(self.work_dir, name)

    def new_port(self):
        port = free_tcp_port()
        while port in self.ports:
            port = free_tcp_port()
        self.ports.add(port)
        return port

    def write(self, name, text):
        with open(self.path(name), "w") as out:
            out.write(text)
        return self.path(name)


def start_stickyproxy(bench, deadline):
    """stickyproxy and its four workers; stdout (the access log) to /dev/null, stderr to the temp dir.
    With --workers nginx: stickyproxy -c conf/bench.conf, as it is."""
    if bench.external:
        return start_bench_stickyproxy(bench, deadline)
    port, metrics_port = bench.new_port(), bench.new_port()
    for folder in ("run", "state"):
        os.makedirs(bench.path(folder))
    config = write_proxy_config(bench.work_dir, os.path.join(bench.build_dir, "test-worker"), port, metrics_port,
                                len(WORKERS), overrides=bench.secret.overrides({"health_check.interval":
                                                                                HEALTH_CHECK_INTERVAL}))
    binary = os.path.join(bench.build_dir, "stickyproxy")
    # The shell only redirects stdout and execs: the pid we get is stickyproxy's.
    argv = ["/bin/sh", "-c", 'exec "$0" "$@" >/dev/null', binary, "-c", config]
    process = bench.processes.start("stickyproxy", argv, bench.path("stickyproxy.stderr.log"))
    return started(bench, RunningProxy("stickyproxy", port, process, bench.path("stickyproxy.stderr.log"), False),
                   deadline)


def start_bench_stickyproxy(bench, deadline):
    binary = os.path.join(bench.build_dir, "stickyproxy")
    argv = ["/bin/sh", "-c", 'exec "$0" "$@" >/dev/null', binary, "-c", os.path.abspath(BENCH_CONF)]
    process = bench.processes.start("stickyproxy", argv, bench.path("stickyproxy.stderr.log"))
    return started(bench, RunningProxy("stickyproxy", BENCH_LISTEN, process, bench.path("stickyproxy.stderr.log"),
                                       False), deadline)


def nginx_workers_config(bench):
    """conf/bench.conf's four workers: one nginx (master and two worker processes, one per core of
    the machine the issue measured on) with a server per port, each answering /ping with 100 bytes,
    /64k with 64 KiB from a file and every response with X-Worker: its name."""
    servers = []
    for worker, port in zip(WORKERS, BENCH_WORKER_PORTS):
        servers += [
            "    server {",
            "        listen 127.0.0.1:%d reuseport;" % port,
            "        keepalive_timeout 300s;",
            "        keepalive_requests 1000000;",
            "        add_header X-Worker %s always;" % worker,
            "        location = /ping { default_type text/plain; return 200 '%s'; }" % SMALL_BODY.decode().strip(),
            "        location = /whoami { default_type text/plain; return 200 '%s'; }" % worker,
            "        location = /64k { root %s; try_files /64k.bin =404; }" % bench.path("files"),
            "        location = /64k.html { default_type text/html; root %s; try_files /64k.html =404; }"
            % bench.path("files"),
            # The sink of the upload runs: the whole body is read (into memory, bench.upload_dir)
            # before the answer.
            "        location = /upload { client_max_body_size 0; dav_methods PUT; root %s; "
            "client_body_temp_path %s; }" % (bench.upload_dir, bench.upload_dir),
            "    }",
        ]
    return "\n".join(nginx_main_lines(bench, "workers-nginx", 2, 4096) + [
        "    sendfile on;",
        "    open_file_cache max=16;",
    ] + nginx_temp_paths(bench.path("workers-nginx-temp")) + servers + ["}"]) + "\n"


def html_like_body(size):
    """`size` bytes of markup like the app's map pages (paths and fills with varied numbers,
    seeded): text that compresses as a real page does, not one repeated byte."""
    out, state = [], 12345
    while sum(map(len, out)) < size:
        state = (state * 1103515245 + 12345) % 2147483648
        out.append('<path d="M%d %dL%d %d" fill="#%06x"/>\n' % (state % 997, state % 991, state % 983, state % 977,
                                                                  state % 0xffffff))
    return "".join(out).encode()[:size]


def start_nginx_workers(bench, deadline):
    """The workers of conf/bench.conf, before any proxy; fails when one of its ports is taken."""
    busy = [port for port in BENCH_WORKER_PORTS + [BENCH_LISTEN, BENCH_METRICS] if not port_free(port)]
    if busy:
        raise TestFailure("conf/bench.conf's ports %s are in use on 127.0.0.1: stop what listens there"
                          % " ".join(map(str, busy)))
    os.makedirs(bench.path("files"))
    with open(bench.path("files/64k.bin"), "wb") as body:
        body.write(b"x" * LARGE_BODY_BYTES)
    with open(bench.path("files/64k.html"), "wb") as body:
        body.write(html_like_body(LARGE_BODY_BYTES))
    os.makedirs(bench.path("workers-nginx-temp"))
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else bench.work_dir
    bench.upload_dir = tempfile.mkdtemp(prefix="sp-peer-upload-", dir=shm)
    config = bench.write("workers-nginx.conf", nginx_workers_config(bench))
    base = [find_binary("nginx"), "-p", bench.work_dir, "-e", bench.path("workers-nginx-error.log"), "-c", config]
    check_config("nginx workers", base + ["-t", "-q"])
    process = bench.processes.start("workers", base, bench.path("workers-nginx.log"))
    for port in BENCH_WORKER_PORTS:
        while True:
            if process.poll() is not None:
                raise TestFailure("the workers' nginx exited with status %s\n%s"
                                  % (process.returncode, tail(bench.path("workers-nginx-error.log"))))
            try:
                if one_request(port, "/ping", {}, timeout=deadline.cap(2.0))[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if deadline.remaining() <= 0:
                raise TestFailure("the workers' nginx did not answer on 127.0.0.1:%d" % port)
            time.sleep(0.05)
    log("workers: nginx on 127.0.0.1:%s (pid %d)" % (",".join(map(str, BENCH_WORKER_PORTS)), process.pid))


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def haproxy_balance(bench):
    """HAProxy as its users make it sticky: its own cookie, or with --workers nginx a consistent
    hash of the sid cookie like the other two."""
    if bench.external:
        return ["    balance hash req.cook(%s)" % SID_COOKIE, "    hash-type consistent"]
    return ["    balance roundrobin", "    cookie %s insert indirect nocache" % HAPROXY_COOKIE]


def haproxy_config(bench, port):
    servers = ["    server %s %s cookie %s check inter %s" % (worker, bench.worker_address(worker, "unix@"), worker,
                                                               HEALTH_CHECK_INTERVAL) for worker in WORKERS]
    return "\n".join([
        "# Written by tests/load/peer_benchmark.py",
        "global",
        "    nbthread 1",
        "    maxconn 4096",
        "    tune.comp.maxlevel 1",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    http-reuse safe",
        "    timeout connect 5s",
        "    timeout client 75s",
        "    timeout server 120s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 75s",
        "    timeout queue 30s",
        "",
        "frontend web",
        "    bind 127.0.0.1:%d" % port,
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto http",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    default_backend workers",
        "",
        "backend workers",
        "    compression algo gzip",  # the 64k-gzip scenario; the others ask no Accept-Encoding
        "    compression type text/html",
    ] + haproxy_balance(bench) + [
        "    option httpchk GET /ping",
    ] + servers) + "\n"


def start_haproxy(bench, deadline):
    port = bench.new_port()
    config = bench.write("haproxy.cfg", haproxy_config(bench, port))
    check_config("haproxy", [find_binary("haproxy"), "-c", "-q", "-f", config])
    argv = [find_binary("haproxy"), "-W", "-f", config, "-p", bench.path("haproxy.pid")]
    process = bench.processes.start("haproxy", argv, bench.path("haproxy.log"))
    return started(bench, RunningProxy("haproxy", port, process, bench.path("haproxy.log"), True), deadline)


def nginx_user_line():
    """nginx run by root would switch its worker to `nobody`, who cannot reach the sockets in our
    0700 temp dir: it stays the current user. For any other user nginx ignores `user`."""
    if os.geteuid() != 0:
        return ""
    return "user %s %s;" % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)


def nginx_main_lines(bench, name, processes, connections):
    """The top of an nginx config written here, up to the open http block: a foreground master
    with `processes` workers, its pid and error log named after `name` in the temp dir, no access log."""
    return [
        "# Written by tests/load/peer_benchmark.py (%s)" % name,
        nginx_user_line(),
        "daemon off;",
        "master_process on;",
        "worker_processes %d;" % processes,
        "pid %s;" % bench.path(name + ".pid"),
        "error_log %s warn;" % bench.path(name + "-error.log"),
        "events { worker_connections %d; }" % connections,
        "http {",
        "    access_log off;",
    ]


def nginx_temp_paths(temp):
    return ["    %s_temp_path %s/%s;" % (kind, temp, kind) for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                      "scgi")]


def nginx_config(bench, port):
    servers = ["        server %s;" % bench.worker_address(worker, "unix:") for worker in WORKERS]
    temp = bench.path("nginx-temp")
    return "\n".join(nginx_main_lines(bench, "nginx", 1, 1024) + nginx_temp_paths(temp) + [
        "    upstream workers {",
        "        hash $cookie_%s consistent;" % (SID_COOKIE if bench.external else COOKIE),
    ] + servers + [
        "        keepalive 32;",
        "        keepalive_requests 1000000;",  # the other two cap no connection's requests
        "    }",
        "    gzip on;",  # the 64k-gzip scenario; the others ask no Accept-Encoding
        "    gzip_types text/html;",
        "    gzip_comp_level 1;",
        "    gzip_proxied any;",
        "    gzip_min_length 1024;",
        "    server {",
        "        listen 127.0.0.1:%d;" % port,
        "        keepalive_timeout 75s;",
        "        keepalive_requests 1000000;",
        "        location / {",
        "            proxy_pass http://workers;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $host;",
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "            proxy_set_header X-Forwarded-Proto $scheme;",
        "            proxy_set_header X-Forwarded-Host $host;",
        "            proxy_read_timeout 120s;",
        "            proxy_max_temp_file_size 0;",
        "            client_max_body_size 0;",
        "            proxy_request_buffering off;",  # streams uploads, as the other two do
        "        }",
        "    }",
        "}",
    ]) + "\n"


def start_nginx(bench, deadline):
    port = bench.new_port()
    os.makedirs(bench.path("nginx-temp"))
    config = bench.write("nginx.conf", nginx_config(bench, port))
    base = [find_binary("nginx"), "-p", bench.work_dir, "-e", bench.path("nginx-error.log"), "-c", config]
    check_config("nginx", base + ["-t", "-q"])
    process = bench.processes.start("nginx", base, bench.path("nginx.log"))
    return started(bench, RunningProxy("nginx", port, process, bench.path("nginx-error.log"), True), deadline)


def check_config(name, argv):
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise TestFailure("%s refused its config:\n%s" % (name, (done.stdout + done.stderr).strip()))


def started(bench, proxy, deadline):
    """Waits until `proxy` answers GET /ping with 200 and checks that the pid we measure is it."""
    last_error = "no answer yet"
    while deadline.remaining() > 0:
        if proxy.process.poll() is not None:
            raise TestFailure("%s exited with status %s before answering /ping\n%s"
                              % (proxy.name, proxy.process.returncode, tail(proxy.log_path)))
        try:
            status, _, _ = one_request(proxy.port, "/ping", {}, timeout=deadline.cap(2.0))
            if status == 200:
                break
            last_error = "GET /ping answered %d" % status
        except (OSError, http.client.HTTPException) as error:
            last_error = str(error)
        time.sleep(0.1)
    else:
        raise TestFailure("%s did not answer GET /ping in time (%s)\n%s" % (proxy.name, last_error,
                                                                           tail(proxy.log_path)))
    names = [process_name(pid) for pid in proxy.pids()]
    if set(names) != {proxy.name}:
        raise TestFailure("%s: the processes measured are %s" % (proxy.name, names))
    log("%s on 127.0.0.1:%d (pids %s)" % (proxy.name, proxy.port, " ".join(map(str, proxy.pids()))))
    bench.proxies[proxy.name] = proxy
    return proxy


def find_binary(name):
    return shutil.which(name, path=SEARCH_PATH)


def binary_version(argv):
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    return (done.stdout + done.stderr).strip().splitlines()[0]


# ---- /proc ----

def child_pids(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
            return [int(token) for token in children.read().split()]
    except OSError:
        return []


def process_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as comm:
            return comm.read().strip()
    except OSError:
        return "?"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pids):
    """(utime, stime) of `pids` (their own, not their children's), in seconds."""
    user = system = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])  # fields 14 and 15 of proc(5)
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class ResourceWatch(threading.Thread):
    """The CPU seconds a proxy's processes use between start() and stop(), and the peak of their
    summed VmRSS, sampled every RSS_SAMPLE_INTERVAL, with its growth over what it was at start."""

    def __init__(self, proxy):
        super().__init__(name="watch-" + proxy.name, daemon=True)
        self.proxy = proxy
        self.stopping = threading.Event()
        self.peak_rss = 0
        self.cpu_at_start = cpu_times(proxy.pids())
        self.rss_at_start = rss_bytes(proxy.pids())

    def run(self):
        while True:
            self.peak_rss = max(self.peak_rss, rss_bytes(self.proxy.pids()))
            if self.stopping.wait(RSS_SAMPLE_INTERVAL):
                return

    def stop(self):
        """(CPU seconds used, the kernel's part of them, peak RSS in bytes, peak RSS minus RSS at
        start)."""
        user, system = cpu_times(self.proxy.pids())
        user -= self.cpu_at_start[0]
        system -= self.cpu_at_start[1]
        self.stopping.set()
        self.join(timeout=5.0)
        peak = max(self.peak_rss, rss_bytes(self.proxy.pids()))
        return user + system, system, peak, max(0, peak - self.rss_at_start)


# ---- stickiness ----

def one_request(port, path, cookies, timeout=10.0, connection=None):
    """GET `path` with `cookies` (a dict): (status, X-Worker, {cookie name: value} set by the answer)."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Cookie": "; ".join("%s=%s" % item for item in cookies.items())} if cookies else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        set_cookies = dict(header.split(";", 1)[0].strip().split("=", 1)
                           for header in response.msg.get_all("Set-Cookie") or [] if "=" in header)
        return response.status, response.getheader("X-Worker"), set_cookies
    finally:
        if own:
            connection.close()


def browse(proxy, jar):
    """STICKY_REQUESTS GET /whoami on one keep-alive connection with a cookie jar: the workers that
    answered, in order, and the problems seen."""
    workers, problems = [], []
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10.0)
    try:
        for number in range(STICKY_REQUESTS):
            status, worker, set_cookies = one_request(proxy.port, "/whoami", jar, connection=connection)
            if status != 200 or not worker:
                problems.append("request %d answered %d (X-Worker %r)" % (number + 1, status, worker))
            if number == 0 and proxy.name != "nginx" and proxy_cookie(proxy) not in set_cookies:
                problems.append("the first answer set no %s cookie (it set %s)" % (proxy_cookie(proxy), set_cookies))
            jar.update(set_cookies)
            workers.append(worker)
    finally:
        connection.close()
    return workers, problems


def proxy_cookie(proxy):
    return HAPROXY_COOKIE if proxy.name == "haproxy" else COOKIE


def check_sessions_stick(proxy, secret):
    """STICKY_SESSIONS cookie-jar sessions, each on one worker for all its requests. stickyproxy and
    HAProxy start with an empty jar; nginx, which sets no cookie, with a fixed signed cookie."""
    failures, placed = [], []
    for session in range(1, STICKY_SESSIONS + 1):
        jar = {COOKIE: secret.cookie("sticky-%d" % session)} if proxy.name == "nginx" else {}
        workers, problems = browse(proxy, jar)
        if len(set(workers)) != 1:
            problems.append("answered by %s" % " ".join(str(worker) for worker in workers))
        failures += ["%s session %d: %s" % (proxy.name, session, problem) for problem in problems]
        placed.append(workers[0])
    return failures, placed


def check_wrk_sessions_honoured(proxy, sessions):
    """Each of WRK_SCRIPT's Cookie headers keeps its session: no routing cookie set in the answer,
    and for HAProxy the worker its SERVERID names."""
    failures, placed = [], []
    for session in range(1, SESSIONS + 1):
        cookies = dict(pair.split("=", 1) for pair in session_cookie(sessions, session).split("; "))
        status, worker, set_cookies = one_request(proxy.port, "/whoami", cookies)
        if status != 200 or proxy_cookie(proxy) in set_cookies:
            failures.append("%s: wrk session %d answered %d, set %s" % (proxy.name, session, status, set_cookies))
        if proxy.name == "haproxy" and worker != cookies[HAPROXY_COOKIE]:
            failures.append("haproxy: wrk session %d with %s=%s answered by %s"
                            % (session, HAPROXY_COOKIE, cookies[HAPROXY_COOKIE], worker))
        placed.append(worker)
    return failures, placed


def spread(workers):
    counts = collections.Counter(workers)
    return " ".join("%s:%d" % (worker, counts.get(worker, 0)) for worker in WORKERS)


def check_sid_sessions_stick(proxy, sessions):
    """--workers nginx: each fixed sid session makes STICKY_REQUESTS GET /whoami on one keep-alive
    connection and stays on one worker; no answer sets a cookie (the session holds them all)."""
    failures, placed = [], []
    for session, header in sessions.items():
        cookies = dict(pair.split("=", 1) for pair in header.split("; "))
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10.0)
        try:
            answers = [one_request(proxy.port, "/whoami", cookies, connection=connection)
                       for _ in range(STICKY_REQUESTS)]
        finally:
            connection.close()
        workers = [worker for _, worker, _ in answers]
        if len(set(workers)) != 1 or any(status != 200 for status, _, _ in answers):
            failures.append("%s: sid session %d answered %s by %s" % (proxy.name, session,
                                                                        sorted({status for status, _, _ in answers}),
                                                                        " ".join(map(str, workers))))
        if any(set_cookies for _, _, set_cookies in answers):
            failures.append("%s: sid session %d was set cookies %s" % (proxy.name, session, answers[0][2]))
        placed.append(workers[0])
    return failures, placed


def check_stickiness(bench):
    failures, rows = [], []
    if bench.external:
        for proxy in bench.proxies.values():
            sid_failures, placed = check_sid_sessions_stick(proxy, bench.sessions)
            failures += sid_failures
            rows.append([proxy.name, "ok" if not sid_failures else "FAILED", spread(placed)])
        print_table("stickiness (the %d sid sessions of the wrk script x %d GET /whoami each)"
                    % (SESSIONS, STICKY_REQUESTS), ["proxy", "sessions stick", "sessions per worker"], rows)
        return failures
    for proxy in bench.proxies.values():
        sticky_failures, sticky_placed = check_sessions_stick(proxy, bench.secret)
        cookie_failures, wrk_placed = check_wrk_sessions_honoured(proxy, bench.sessions)
        failures += sticky_failures + cookie_failures
        rows.append([proxy.name, "ok" if not sticky_failures else "FAILED", spread(sticky_placed),
                     "ok" if not cookie_failures else "FAILED", spread(wrk_placed)])
    print_table("stickiness (%d cookie-jar sessions x %d GET /whoami; the %d sessions of the wrk script)"
                % (STICKY_SESSIONS, STICKY_REQUESTS, SESSIONS),
                ["proxy", "sessions stick", "their workers", "wrk cookies kept", "wrk sessions per worker"], rows)
    return failures


# ---- runs ----

Run = collections.namedtuple("Run", "proxy scenario round wrk cpu_seconds system_seconds peak_rss rss_growth")


def measure(bench, proxy, scenario, seconds, label, deadline):
    """One wrk run of `scenario` against `proxy`, with the proxy's CPU and memory around it."""
    if deadline.remaining() < seconds + 5:
        raise TestFailure("out of time (--timeout) before %s" % label)
    script = wrk_options(bench, scenario)
    watch = ResourceWatch(proxy)
    watch.start()
    try:
        wrk = WrkRun(bench.processes, bench.work_dir, label, proxy.url(scenario.path), WRK_THREADS,
                     scenario.connections, seconds, **script).finish(timeout=deadline.cap(seconds + 15))
    finally:
        resources = watch.stop()
    return (wrk,) + resources


def wrk_options(bench, scenario):
    """WrkRun's script arguments for `scenario`: the fixed sessions' script, asking gzip when the
    scenario does."""
    if not scenario.sessions:
        return {}
    return dict(script=bench.wrk_script, script_args=("gzip",) if scenario.gzip else ())


def cpu_us_per_request(run):
    return run.cpu_seconds * 1e6 / run.wrk.requests if run.wrk.requests else float("inf")


def run_round(bench, round_number, scenarios, seconds, deadline):
    runs = []
    for scenario in scenarios:
        for proxy in bench.proxies.values():
            label = "%s-%s-%d" % (scenario.name, proxy.name, round_number)
            run = Run(proxy.name, scenario.name, round_number,
                      *measure(bench, proxy, scenario, seconds, label, deadline))
            log("round %d %-12s %-11s %7.0f req/s  p50 %s  p99 %s  %5.1f us/req CPU  %5.1f MiB (+%.1f)  %d failed"
                % (round_number, scenario.name, proxy.name, run.wrk.rps, ms(run.wrk.p50), ms(run.wrk.p99),
                   cpu_us_per_request(run), mib(run.peak_rss), mib(run.rss_growth), wrk_failures(run.wrk)))
            runs.append(run)
            time.sleep(PAUSE_BETWEEN_RUNS)
    return runs


SYSCALL_WINDOW = 2.0  # seconds of a run that perf counts, from SYSCALL_SETTLE into it
SYSCALL_SETTLE = 1.0


def syscalls_per_request(bench, proxy, scenario, deadline):
    """The proxy's system calls per request in a run of its own (perf's counting slows every call):
    perf stat counts raw_syscalls:sys_enter of its processes for SYSCALL_WINDOW seconds while wrk
    runs, divided by the requests wrk saw in that time at its average rate. None without perf."""
    perf = find_binary("perf")
    if perf is None:
        return None
    seconds = int(SYSCALL_SETTLE + SYSCALL_WINDOW + 1)
    script = wrk_options(bench, scenario)
    wrk = WrkRun(bench.processes, bench.work_dir, "syscalls-%s-%s" % (scenario.name, proxy.name),
                 proxy.url(scenario.path), WRK_THREADS, scenario.connections, seconds, **script)
    time.sleep(SYSCALL_SETTLE)  # a point inside the run, not a wait for a condition
    counted = subprocess.run([perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter",
                              "-p", ",".join(map(str, proxy.pids())), "--", "sleep", str(SYSCALL_WINDOW)],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=deadline.cap(30))
    result = wrk.finish(timeout=deadline.cap(seconds + 15))
    for line in counted.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("raw_syscalls:sys_enter") and fields[0].isdigit():
            return int(fields[0]) / (result.rps * SYSCALL_WINDOW) if result.rps else None
    log("perf stat counted nothing for %s: %s" % (proxy.name, counted.stderr.strip()[:300]))
    return None


PROFILE_SECONDS = 5


def profile_stickyproxy(bench, scenario, output, deadline):
    """--perf-record: `perf record -g` of stickyproxy for PROFILE_SECONDS in the middle of a wrk
    run of `scenario`, written to `output`; prints where the time went by binary and the top
    symbols of the proxy's own code and libraries. Returns failures."""
    perf = find_binary("perf")
    if perf is None:
        return ["--perf-record needs perf (Debian's linux-perf)"]
    proxy = bench.proxies["stickyproxy"]
    seconds = int(SYSCALL_SETTLE + PROFILE_SECONDS + 1)
    script = wrk_options(bench, scenario)
    wrk = WrkRun(bench.processes, bench.work_dir, "profile-" + scenario.name, proxy.url(scenario.path), WRK_THREADS,
                 scenario.connections, seconds, **script)
    time.sleep(SYSCALL_SETTLE)  # a point inside the run, not a wait for a condition
    recorded = subprocess.run([perf, "record", "-g", "-F", "999", "-o", output, "-p", str(proxy.process.pid), "--",
                               "sleep", str(PROFILE_SECONDS)], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=deadline.cap(60))
    wrk.finish(timeout=deadline.cap(seconds + 15))
    if recorded.returncode != 0:
        return ["perf record failed: %s" % recorded.stderr.strip()[-300:]]
    for title, argv in [("by binary", ["--sort", "dso"]),
                        ("top symbols outside the kernel", ["--sort", "dso,symbol", "--percent-limit", "0.5",
                                                            "--dsos", "stickyproxy,libc.so.6,libuv.so.1.0.0,"
                                                            "libstdc++.so.6.0.30,libcrypto.so.3,libssl.so.3"])]:
        report = subprocess.run([perf, "report", "-i", output, "--stdio", "--no-children", "-g", "none"] + argv,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=deadline.cap(120))
        # perf pads each line out to its widest symbol and ends it with empty "-" columns.
        lines = [re.sub(r"(\s+-)+\s*$", "", re.sub(r"\s{2,}", "  ", line.strip()))
                 for line in report.stdout.splitlines() if line.strip() and not line.startswith("#")]
        print_table("perf profile of stickyproxy, scenario %s, %s (%s)" % (scenario.name, title, output),
                    ["share and symbol"], [[line.strip()] for line in lines[:30]])
    return []


def count_syscalls(bench, scenarios, deadline):
    """{(proxy, scenario): system calls per request}, one short run each after the measured ones."""
    counts = {}
    for scenario in scenarios:
        for proxy in bench.proxies.values():
            counts[(proxy.name, scenario.name)] = syscalls_per_request(bench, proxy, scenario, deadline)
            time.sleep(PAUSE_BETWEEN_RUNS)
    return counts


UPLOAD_PIECE = 1 << 20


def upload_seconds(port, mib, cookie, deadline):
    """Seconds to PUT `mib` MiB (Content-Length, sent in 1 MiB pieces from memory) to
    127.0.0.1:`port`/upload and read the answer, which comes once the body is stored; raises
    TestFailure on anything but 201 or 204."""
    piece = b"u" * UPLOAD_PIECE
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline.cap(120.0))
    try:
        started = time.monotonic()
        connection.putrequest("PUT", "/upload")
        connection.putheader("Content-Length", str(mib * UPLOAD_PIECE))
        connection.putheader("Cookie", cookie)
        connection.endheaders()
        for _ in range(mib):
            connection.send(piece)
        response = connection.getresponse()
        response.read()
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    if response.status not in (201, 204):
        raise TestFailure("upload to port %d answered %d" % (port, response.status))
    return elapsed


def measure_uploads(bench, mib, rounds, deadline):
    """Uploads of `mib` MiB straight to a worker and through each proxy, interleaved, `rounds`
    times: MiB/s (median) and the ratio to direct; the issue's goal is >= 0.9 through stickyproxy."""
    targets = [("direct (worker w1)", BENCH_WORKER_PORTS[0])] + [(p.name, p.port) for p in bench.proxies.values()]
    seconds = collections.defaultdict(list)
    cookie = bench.sessions[1]
    for _ in range(rounds):
        for name, port in targets:
            if deadline.remaining() < 60:
                return ["out of time (--timeout) in the upload runs"]
            seconds[name].append(upload_seconds(port, mib, cookie, deadline))
    rate = {name: mib / statistics.median(times) for name, times in seconds.items()}
    direct = rate[targets[0][0]]
    rows = [[name, "%.0f" % rate[name], "%.2f" % (rate[name] / direct),
             " ".join("%.2f" % value for value in seconds[name])] for name, _ in targets]
    ratio_sp = rate["stickyproxy"] / direct
    print_table("uploads: PUT /upload of %d MiB (Content-Length, streamed; the worker stores it in memory), "
                "%d round(s), interleaved" % (mib, rounds),
                ["to", "MiB/s", "÷ direct", "seconds per run"], rows,
                ["goal (issue 11): through stickyproxy >= 0.90 of direct: %.2f %s"
                 % (ratio_sp, "PASS" if ratio_sp >= 0.9 else "FAIL")])
    return []


def warm_up(bench, deadline):
    """A short small-scenario run per proxy, not counted: pools filled, caches warm."""
    failures = []
    for proxy in bench.proxies.values():
        wrk = measure(bench, proxy, SCENARIOS["small"], WARMUP_SECONDS, "warm-up-" + proxy.name, deadline)[0]
        if wrk_failures(wrk):
            failures.append("warm-up %s: %d non-2xx, %d socket errors" % (proxy.name, wrk.non_2xx, wrk.socket_errors))
    return failures


def run_failures(runs):
    return ["%s %s round %d: %d non-2xx answers, %d socket errors"
            % (run.scenario, run.proxy, run.round, run.wrk.non_2xx, run.wrk.socket_errors)
            for run in runs if wrk_failures(run.wrk)]


# ---- report ----

Summary = collections.namedtuple("Summary", "rps p50 p99 cpu_us kernel rss rss_growth failures rps_low rps_high")


def summarize(runs):
    """The median of each figure over a proxy's runs of one scenario (RSS and its growth: the peak)."""
    return Summary(rps=statistics.median(run.wrk.rps for run in runs),
                   p50=statistics.median(run.wrk.p50 for run in runs),
                   p99=statistics.median(run.wrk.p99 for run in runs),
                   cpu_us=statistics.median(cpu_us_per_request(run) for run in runs),
                   kernel=statistics.median(run.system_seconds / run.cpu_seconds if run.cpu_seconds else 0.0
                                            for run in runs),
                   rss=max(run.peak_rss for run in runs), rss_growth=max(run.rss_growth for run in runs),
                   failures=sum(wrk_failures(run.wrk) for run in runs),
                   rps_low=min(run.wrk.rps for run in runs), rps_high=max(run.wrk.rps for run in runs))


def mib(size):
    return size / 2.0 ** 20


def ratio(value, baseline):
    return "%.2f" % (value / baseline) if baseline else "-"


def cpu_ratio_by_round(scenario, runs):
    """"CPU ÷ sp round by round: haproxy 0.65 0.56 ..., nginx ...": each run's CPU per request over
    stickyproxy's in the same round."""
    mine = {(run.proxy, run.round): cpu_us_per_request(run) for run in runs if run.scenario == scenario.name}
    rounds = sorted({number for _, number in mine})
    parts = []
    for name in PROXIES[1:]:
        ratios = [ratio(mine[(name, number)], mine[(BASELINE, number)]) for number in rounds
                  if (name, number) in mine and (BASELINE, number) in mine]
        parts.append("%s %s" % (name, " ".join(ratios)))
    return "CPU ÷ sp round by round: " + ", ".join(parts)


def print_scenario(scenario, runs, seconds, rounds, syscalls):
    summaries = collections.OrderedDict()
    for name in PROXIES:
        mine = [run for run in runs if run.proxy == name and run.scenario == scenario.name]
        if mine:
            summaries[name] = summarize(mine)
    base = summaries[BASELINE]
    rows = [[name, "%.0f" % s.rps, ms(s.p50), ms(s.p99), "%.1f" % s.cpu_us, "%.0f%%" % (100 * s.kernel),
             "%.1f" % mib(s.rss), "+%.1f" % mib(s.rss_growth), syscall_cell(syscalls.get((name, scenario.name))), s.failures,
             ratio(s.rps, base.rps), ratio(s.p99, base.p99), ratio(s.cpu_us, base.cpu_us)]
            for name, s in summaries.items()]
    notes = ["median of %d run(s) of %d s each; kernel: the part of the proxy's CPU spent in system calls and "
             "interrupts (stime); RSS MiB: peak of the proxy's processes over the runs, "
             "+MiB: the most it grew within one run" % (rounds, seconds),
             "req/s spread over the rounds: %s" % ", ".join(
                 "%s %.0f..%.0f (%+.0f%%..%+.0f%%)" % (name, s.rps_low, s.rps_high, 100 * (s.rps_low / s.rps - 1),
                                                     100 * (s.rps_high / s.rps - 1)) for name, s in summaries.items())]
    notes.append(cpu_ratio_by_round(scenario, runs))
    if scenario.name == "large":
        notes.append("nginx keeps its default proxy buffers (8 x one memory page) and writes no temp file: "
                     "larger proxy_buffers lower its CPU per request here")
    if scenario.name == "new-sessions":
        notes.append("nginx starts no sessions: without a cookie every request hashes to the same worker")
    if any(run.scenario == "new-sessions" for run in runs):
        notes.append("stickyproxy keeps an entry (about 120 bytes) per session for routing.session_idle (30 min), "
                     "up to 500k: each new-sessions run grows its RSS, which later runs start from")
    print_table("scenario %s: %s (wrk -t%d -c%d)" % (scenario.name, scenario.what, WRK_THREADS, scenario.connections),
                ["proxy", "req/s", "p50", "p99", "CPU us/req", "kernel", "RSS MiB", "+MiB", "syscalls/req", "failures",
                 "req/s ÷ sp", "p99 ÷ sp", "CPU ÷ sp"], rows, notes)
    return summaries


def syscall_cell(count):
    return "-" if count is None else "%.2f" % count


GOAL_LABELS = {"small": "100 B, 50 conns", "small-200": "100 B, 200 conns", "64k": "64 KiB, 50 conns"}
FIGURE_LABELS = {"rps": "req/s", "cpu_us": "proxy CPU us/request", "p99": "p99", "rss": "resident MiB"}


def figure(summary, name):
    if name == "rss":
        return mib(summary.rss)
    if name == "p99":
        return summary.p99 * 1000.0
    return getattr(summary, name)


def print_goals(summaries):
    """--workers nginx: the issue's table, one line per goal, stickyproxy's figure as a ratio to the
    peer's (or against the fixed bound), PASS or FAIL."""
    rows, passed = [], 0
    for scenario, name, peer, sense, bound in GOALS:
        by_proxy = summaries.get(scenario)
        if not by_proxy or BASELINE not in by_proxy:
            continue
        mine = figure(by_proxy[BASELINE], name)
        value = mine / figure(by_proxy[peer], name) if peer else mine
        ok = value >= bound if sense == ">=" else value <= bound
        passed += ok
        peers = ["%.1f" % figure(by_proxy[p], name) if p in by_proxy else "-" for p in ("haproxy", "nginx")]
        rows.append(["%s: %s" % (GOAL_LABELS[scenario], FIGURE_LABELS[name])] + peers +
                    ["%.1f" % mine, "%.2fx %s" % (value, peer) if peer else "%.1f" % value,
                     "%s %s%s" % (sense, bound, "x " + peer if peer else " MiB"), "PASS" if ok else "FAIL"])
    print_table("goals (issue 11): stickyproxy against the peers", ["load", "haproxy", "nginx", "stickyproxy",
                                                                    "ratio", "goal", ""], rows,
                ["%d of %d goals held" % (passed, len(rows))])


def print_setup(bench):
    haproxy_version = binary_version([find_binary("haproxy"), "-v"])
    nginx_version = binary_version([find_binary("nginx"), "-v"])
    print_table("set-up", ["what", "value"], [
        ["machine", "%d cores (os.cpu_count), load average %.2f %.2f %.2f at start" % ((os.cpu_count(),)
                                                                                       + os.getloadavg())],
        ["stickyproxy", "%s, one event loop, %s, stderr to %s"
         % (os.path.join(bench.build_dir, "stickyproxy"),
            "-c conf/bench.conf (access_log = errors)" if bench.external else "access log (stdout) to /dev/null",
            os.path.basename(bench.proxies["stickyproxy"].log_path))],
        ["haproxy", "%s; -W (master + 1 worker), nbthread 1, no log, %s" % (
            haproxy_version, "balance hash req.cook(sid) consistent" if bench.external else "cookie SERVERID insert")],
        ["nginx", "%s; master + worker_processes 1, access_log off, hash $cookie_%s consistent"
         % (nginx_version, SID_COOKIE if bench.external else COOKIE)],
        ["workers", "nginx (master + 2 worker processes) on 127.0.0.1:%s: /ping 100 B, /64k 64 KiB"
         % ",".join(map(str, BENCH_WORKER_PORTS)) if bench.external else
         "4 x %s on Unix sockets, supervised by stickyproxy, shared by all three"
         % os.path.join(bench.build_dir, "test-worker")],
        ["syscalls/req", "perf stat -e raw_syscalls:sys_enter over %.0f s of a separate run per proxy and scenario"
         % SYSCALL_WINDOW],
        ["CPU and RSS of", "stickyproxy's process (not its workers); haproxy master + worker; nginx master + worker"],
    ])


def stickyproxy_log_notes(bench):
    """What stickyproxy wrote on stderr during the benchmark: error lines are worth a look."""
    try:
        with open(bench.proxies["stickyproxy"].log_path, errors="replace") as stderr_log:
            lines = stderr_log.read().splitlines()
    except (OSError, KeyError):
        return
    errors = [line for line in lines if " error: " in line]
    log("stickyproxy wrote %d line(s) on stderr, %d error line(s)" % (len(lines), len(errors)))
    for line in errors[:10]:
        log("  " + line)


# ---- main ----

def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy and test-worker")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario per proxy (default 3)")
    parser.add_argument("--workers", choices=["test-worker", "nginx"], default="test-worker",
                        help="test-worker: four build/test-worker on Unix sockets, supervised by stickyproxy; "
                             "nginx: conf/bench.conf as it is, its workers on 127.0.0.1:9001-9004 served by nginx")
    parser.add_argument("--scenario", action="append", choices=sorted(set(SCENARIOS) | set(NGINX_WORKER_SCENARIOS)),
                        help="a scenario to run (repeatable; default: all of the --workers set)")
    parser.add_argument("--upload-mib", type=int, default=100,
                        help="--workers nginx: the size of the upload runs (PUT /upload, streamed; default 100, "
                             "0: none)")
    parser.add_argument("--upload-rounds", type=int, default=9,
                        help="uploads per target, interleaved; the median counts (default 9: one 100 MiB upload "
                             "takes about 0.1 s, so a few runs are at the mercy of the scheduler)")
    parser.add_argument("--perf-record", metavar="FILE",
                        help="after the runs, profile stickyproxy with perf record -g during the first scenario, "
                             "write FILE and print the top of its report")
    parser.add_argument("--timeout", type=float, default=900.0, help="bound on the whole run, seconds (default 900)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs, wrk output)")
    args = parser.parse_args()
    if args.seconds < 1 or args.rounds < 1 or args.upload_rounds < 1:
        parser.error("--seconds, --rounds and --upload-rounds must be at least 1")
    table = NGINX_WORKER_SCENARIOS if args.workers == "nginx" else SCENARIOS
    unknown = set(args.scenario or []) - set(table)
    if unknown:
        parser.error("--workers %s has no scenario %s (it has %s)" % (args.workers, ", ".join(sorted(unknown)),
                                                                       ", ".join(table)))
    args.scenarios = [table[name] for name in table if name in (args.scenario or list(table))]
    return args


def missing_binaries(build_dir):
    missing = [os.path.join(build_dir, binary) for binary in ("stickyproxy", "test-worker")
               if not os.access(os.path.join(build_dir, binary), os.X_OK)]
    return missing + [name for name in ("haproxy", "nginx", "wrk") if find_binary(name) is None]


def benchmark(bench, args, deadline):
    """Starts the three proxies, checks stickiness, runs the rounds, prints the tables; returns
    every failure seen."""
    if bench.external:
        start_nginx_workers(bench, deadline)
    start_stickyproxy(bench, deadline)
    bench.sessions = fixed_sessions(bench)
    bench.write(os.path.basename(bench.wrk_script), wrk_script(bench.sessions, bench.external))
    start_haproxy(bench, deadline)
    start_nginx(bench, deadline)
    print_setup(bench)
    failures = check_stickiness(bench)
    failures += warm_up(bench, deadline)
    runs = []
    for round_number in range(1, args.rounds + 1):
        runs += run_round(bench, round_number, args.scenarios, args.seconds, deadline)
    syscalls = count_syscalls(bench, args.scenarios, deadline)
    summaries = {scenario.name: print_scenario(scenario, runs, args.seconds, args.rounds, syscalls)
                 for scenario in args.scenarios}
    if bench.external:
        print_goals(summaries)
        if args.upload_mib:
            failures += measure_uploads(bench, args.upload_mib, args.upload_rounds, deadline)
    if args.perf_record:
        failures += profile_stickyproxy(bench, args.scenarios[0], os.path.abspath(args.perf_record), deadline)
    print("\n  load average at the end: %.2f %.2f %.2f" % os.getloadavg())
    stickyproxy_log_notes(bench)
    return failures + run_failures(runs)


def main():
    args = parse_arguments()
    build_dir = os.path.abspath(args.build_dir)
    missing = missing_binaries(build_dir)
    if missing:
        print("peer_benchmark: missing: %s (apt-get install haproxy nginx wrk)" % ", ".join(missing), file=sys.stderr)
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-peer-")
    bench = Bench(build_dir, work_dir, processes, external=args.workers == "nginx")
    try:
        failures = benchmark(bench, args, deadline)
    except (TestFailure, OSError, http.client.HTTPException, subprocess.SubprocessError) as failure:
        failures = [str(failure)]
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)
        if bench.upload_dir:
            shutil.rmtree(bench.upload_dir, ignore_errors=True)
    for failure in failures:
        log("FAIL: %s" % failure)
    log("%s in %.1f s" % ("FAIL" if failures else "PASS", args.timeout - deadline.remaining()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
