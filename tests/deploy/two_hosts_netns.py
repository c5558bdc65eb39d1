#!/usr/bin/env python3
"""Two hosts in network namespaces behind an ALB stand-in (HAProxy with a cookie it inserts, as the
ALB's lb_cookie): the app's whole flow for many users through one host's worker kill, that host
stopped, back, and gone; the other host's users see nothing, and the users of the stopped host see
only the app's own answer for a session it does not know (its "session expired"), then start over.

    python3 tests/deploy/two_hosts_netns.py --build-dir build [--users 40] [--late-users 20]
        [--wards 60] [--seed 7] [--keep-temp] [--timeout 480]

The ctest test `deploy: two hosts in network namespaces behind an ALB stand-in`. It needs root
(`ip netns`), Debian's iproute2 and HAProxy (`apt-get install haproxy`, or `sh
deploy/install-deps.sh --bench`); without them it exits 77 and ctest counts it skipped. CI installs
no HAProxy (install-deps.sh without --bench), so there it is skipped and it runs on demand.

The network, made here and removed at the end whatever happens (also on SIGTERM and SIGINT): two
namespaces `sp-netns-<pid>-a` and `-b` ("hosts"), each joined to the test's own namespace by a veth
pair (`spn<pid>a` outside, `eth0` inside) on a /24 of its own in a 10.N.0.0/16 that no address or
route of this machine uses (N from 200 to 249, searched from one that depends on the pid): host A
is 10.N.1.2, host B 10.N.2.2, their peers outside 10.N.1.1 and 10.N.2.1. No forwarding, no NAT;
nothing else is touched. Namespaces and veths left by an earlier run of this test that was killed
(its pid gone, nothing running in them) are removed first.

Each host runs, inside its namespace (`ip netns exec`), one build/stickyproxy on a copy of
conf/prod.conf (browser_support.copy_shipped_config: its four supervised build/stickyproxy-backend
workers on Unix sockets and its state in the host's own directory, so a host's files are its own;
listening on <host>:8080, metrics on <host>:9090; a killed worker restarted after 5 s rather than
500 ms, so that its users' next requests find it down and move), both hosts reading one routing
secret file (routing.secret_file), as deploy/README.md tells the hosts behind an ALB to.

In front, in this namespace, HAProxy (`haproxy -db`, its own config, stopped by its pid) listens on
a kernel-chosen 127.0.0.1 port: round robin over the two hosts, `cookie AWSALB insert indirect
nocache` (a browser stays on its host, as with the ALB's lb_cookie), health checks GET /ping every
500 ms (down after 2 failures), `option redispatch` with 3 retries and `retry-on conn-failure
empty-response` (a request whose connection was refused, or closed before any answer while HAProxy
still holds it whole, goes to the other host; an ALB answers those 502 until its health check or
the target's deregistration takes the host out), and `X-Served-By: <host>` on every answer, so
that each answer is attributed to the host that gave it. Its log is one line per request (status,
server, termination state with the cookie's, retries).

The users (tests/load/app_flow.User, one thread each, keep-alive connections, both cookies, think
times --think-min..--think-max) play the app's whole flow in a loop: upload (every fifth user in
2 MiB chunks, of a 400-ward data set), analysis, maps, the streamed chat, the export list, a
download, the session status. A user whose flow fails starts over with a new upload, as a person
told "upload your data again" does. The phases, each ending when every user concerned has
completed a flow in it (bounded):

  start           --users users, spread over both hosts by HAProxy
  worker kill     kill -9 on each host of the worker most of its users are on (its pid from the
                  host's /status.json, checked to be that host's proxy's child): the proxy moves
                  their sessions, announced (X-Sticky-Previous-Worker), the app adopts their files
  A stopped       SIGTERM to host A's stickyproxy (graceful: what systemd does when an instance is
                  taken out; the ALB has not been told), sent while an upload of A's users is under
                  way (waited for up to 10 s, then any request): HAProxy's health check marks A
                  down and sends A's users to B. B's proxy accepts their signed cookies (same
                  secret) and routes them to the worker the cookie pins, which has never seen their
                  session: the app answers as it does for a session it does not know (upload again)
  A back          host A's stickyproxy started again (new worker processes, the host's files still
                  on its disk); --late-users new users arrive and about half of them land on A; the
                  users already on B stay there
  A gone          SIGKILL to every process in host A's namespace (a host that dies), again with an
                  upload of A's users under way: a request in flight on A then gets HAProxy's 502
                  (or is sent again to B when HAProxy still holds it whole); A's users then meet the
                  app's answer on B and start over

A failure belongs to the host where the user's flow began (its upload made the session there): a
chunked upload whose first chunk reached A and whose next ones reach B is A's. Passes when:

- no user of host B sees any failure in any phase (no session error, no 5xx, no connection error),
  and no user of host A before A is stopped;
- in "A stopped" each user of A sees at most one failure, and only the app's own answer for an
  unknown session (app_flow.SESSION_ERROR_TEXTS, or a /session_status without the session's data)
  from a worker of host B with a status below 500; in "A gone" the same, plus at most one failure
  per user of A that was a request in flight on A at the kill (counted and printed);
- every user of A completes a flow on B after each stop;
- a request is sent again on a new connection because its kept-alive one closed without an answer
  (as a browser does, and app_flow.User) only by A's users, sent while A stopped or at its kill,
  at most one each;
- every move inside a host is announced and its session adopted; neither proxy logs a 5xx;
  HAProxy fails or closes unanswered no request but those cut at A's stop or kill;
- every phase sees each user concerned through a flow within 90 s.

Prints a table per phase, what A's users saw, which requests were under way at the stop and at
the kill, and PASS or FAIL; exit 0 on PASS, 1 on FAIL, 2 when a binary is missing or the options
are wrong, 77 when the machine cannot run it. Every process is stopped by its pid, the namespaces
and veths removed, the temp dir removed unless --keep-temp. Python standard library only.
"""

import argparse
import collections
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))
sys.path.insert(0, os.path.join(HERE, os.pardir, "load"))

from browser_support import (TestFailure, begin_run, copy_shipped_config, free_tcp_port, http_get,  # noqa: E402
                             log, tail, tear_down, write_routing_secret)
from app_flow import (CHUNK_SIZE, UPLOAD_CHUNKED, UPLOAD_WHOLE, WORKERS, Dataset, LogFigures,  # noqa: E402
                      Recorder, UsageError, User, missing_binaries, print_table, read_log_lines, verdict)

PROD_CONF = os.path.join(HERE, os.pardir, os.pardir, "conf", "prod.conf")
SKIP = 77  # ctest's SKIP_RETURN_CODE for this test
HOSTS = ["A", "B"]
PROXY_PORT = 8080  # inside each host's namespace, the same on every host as on EC2
METRICS_PORT = 9090
ALB_COOKIE = "AWSALB"  # the ALB's lb_cookie's name
SERVED_BY = "X-Served-By"
NAMESPACE = re.compile(r"sp-netns-(\d+)-[ab]$")
VETH = re.compile(r"spn(\d+)[ab]$")
PHASE_BOUND = 90.0  # seconds a phase may take to see every user concerned complete a flow
STOP_BOUND = 30.0  # seconds for a stopped host's proxy to exit
CHUNKED_WARDS = 400  # the data every fifth user uploads in chunks: a zip of about 2.2 MB, two chunks
CHUNKED_DETAIL = 120
RESTART_DELAY = "5s"  # supervisor.restart_backoff_initial
IN_FLIGHT_SLACK = 0.05  # seconds: a request sent this close after the kill is still "in flight" at it
IN_FLIGHT_WAIT = 10.0  # seconds to wait for an upload (then any request) of A's users under way at a stop
UPLOAD_ROUTES = ("POST /upload_both_files", "POST /upload/chunk")  # app_flow.User's route names

PHASE_START = "start"
PHASE_KILL = "worker kill"
PHASE_STOP = "A stopped"
PHASE_BACK = "A back"
PHASE_GONE = "A gone"
PHASE_END = "end (flows finish)"
PHASES = [PHASE_START, PHASE_KILL, PHASE_STOP, PHASE_BACK, PHASE_GONE, PHASE_END]


class Skip(Exception):
    """The machine cannot run this test (not root, no ip or haproxy, no namespaces): exit 77."""


class Interrupted(Exception):
    """SIGTERM, SIGINT or SIGHUP: stop, clean up, fail."""


def command(argv, timeout=15.0, check=True):
    """Runs `argv` (ip, haproxy -c); returns its output; TestFailure when it fails and `check`."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("`%s` did not finish within %.0f s" % (" ".join(argv), timeout))
    if check and done.returncode != 0:
        raise TestFailure("`%s` exited %d: %s" % (" ".join(argv), done.returncode,
                                                   (done.stdout + done.stderr).strip()))
    return done.stdout if done.returncode == 0 else None


def pid_alive(pid):
    return os.path.exists("/proc/%d" % pid)


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------- the network

class Network:
    """The namespaces and veth pairs this run makes. remove() undoes whatever was made, in any
    state, and is safe to call twice."""

    def __init__(self):
        self.tag = str(os.getpid())
        self.prefix = None  # N of 10.N.0.0/16
        self.namespaces = []
        self.links = []

    @staticmethod
    def check_machine():
        """Skip unless this machine lets the test make namespaces."""
        if os.geteuid() != 0:
            raise Skip("needs root (ip netns, veth pairs)")
        for tool, package in (("ip", "iproute2"), ("haproxy", "haproxy")):
            if shutil.which(tool) is None:
                raise Skip("%s is missing (apt-get install %s)" % (tool, package))

    def remove_stale(self):
        """Namespaces and veths of an earlier run of this test that was killed: its pid is gone and
        nothing runs in them any more."""
        listed = command(["ip", "netns", "list"], check=False) or ""
        for line in listed.splitlines():
            name = line.split()[0] if line.split() else ""
            match = NAMESPACE.match(name)
            if not match or pid_alive(int(match.group(1))):
                continue
            if (command(["ip", "netns", "pids", name], check=False) or "").strip():
                log("left alone: namespace %s of an earlier run still has processes" % name)
                continue
            command(["ip", "netns", "del", name], check=False)
            log("removed namespace %s of an earlier run" % name)
        links = command(["ip", "-o", "link", "show"], check=False) or ""
        for line in links.splitlines():
            fields = line.split(":")
            name = fields[1].strip().split("@")[0] if len(fields) > 1 else ""
            match = VETH.match(name)
            if match and not pid_alive(int(match.group(1))):
                command(["ip", "link", "del", name], check=False)
                log("removed veth %s of an earlier run" % name)

    def pick_prefix(self):
        """The first 10.N.0.0/16, N from 200 to 249 (searched from one that depends on our pid, so
        that two runs at once are unlikely to race for the same one), that no address or route here
        overlaps."""
        used = []
        for argv in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
            for token in (command(argv, check=False) or "").split():
                try:
                    used.append(ipaddress.ip_network(token, strict=False))
                except ValueError:
                    pass
        first = os.getpid() % 50
        for n in [200 + (first + step) % 50 for step in range(50)]:
            candidate = ipaddress.ip_network("10.%d.0.0/16" % n)
            if not any(candidate.overlaps(network) for network in used if network.prefixlen > 0):
                self.prefix = n
                return
        raise Skip("no free 10.N.0.0/16 (N 200..249) on this machine")

    def add_host(self, letter, index):
        """Namespace, veth pair and addresses for host `letter` on 10.N.<index>.0/24; returns
        (namespace, host address, outside address)."""
        namespace = "sp-netns-%s-%s" % (self.tag, letter.lower())
        outside = "spn%s%s" % (self.tag, letter.lower())
        host_address = "10.%d.%d.2" % (self.prefix, index)
        outside_address = "10.%d.%d.1" % (self.prefix, index)
        try:
            command(["ip", "netns", "add", namespace])
        except TestFailure as failure:
            if not self.namespaces:
                raise Skip("cannot make a network namespace here: %s" % failure)
            raise
        self.namespaces.append(namespace)
        command(["ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        self.links.append(outside)
        command(["ip", "addr", "add", outside_address + "/24", "dev", outside])
        command(["ip", "link", "set", outside, "up"])
        command(["ip", "-n", namespace, "addr", "add", host_address + "/24", "dev", "eth0"])
        command(["ip", "-n", namespace, "link", "set", "eth0", "up"])
        command(["ip", "-n", namespace, "link", "set", "lo", "up"])
        return namespace, host_address, outside_address

    def pids_in(self, namespace):
        return [int(token) for token in (command(["ip", "netns", "pids", namespace], check=False) or "").split()]

    def remove(self):
        for namespace in reversed(self.namespaces):
            for pid in self.pids_in(namespace):
                # Only what this run started runs there; the process set stopped it already.
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            command(["ip", "netns", "del", namespace], check=False)
        for link in self.links:
            if command(["ip", "link", "show", link], check=False) is not None:
                command(["ip", "link", "del", link], check=False)
        left = [name for name in self.namespaces
                if name in (command(["ip", "netns", "list"], check=False) or "")]
        if left:
            log("could not remove namespaces %s" % ", ".join(left))
        elif self.namespaces:
            log("removed namespaces %s and their veths" % ", ".join(self.namespaces))
        self.namespaces, self.links = [], []


# ---------------------------------------------------------------------------- the hosts

class Host:
    """One "host": a namespace with one stickyproxy and its four workers."""

    def __init__(self, letter, work_dir):
        self.letter = letter
        self.name = "host" + letter
        self.work_dir = work_dir
        self.namespace = self.address = self.outside = self.config = self.process = None
        self.log = os.path.join(work_dir, "stickyproxy.log")
        os.makedirs(work_dir)

    def write_config(self, build_dir, secret_path):
        """A copy of conf/prod.conf (copy_shipped_config: the workers' binary from `build_dir`, the
        admin socket, worker sockets and state in this host's directory) on the host's address, with
        the shared secret file and a killed worker kept down for RESTART_DELAY."""
        self.config = copy_shipped_config(
            PROD_CONF, self.work_dir, build_dir, PROXY_PORT, METRICS_PORT,
            overrides={"proxy.listen": "%s:%d" % (self.address, PROXY_PORT),
                       "proxy.metrics_listen": "%s:%d" % (self.address, METRICS_PORT),
                       "routing.secret_file": secret_path,
                       # a killed worker stays down while its users' next requests move them
                       "supervisor.restart_backoff_initial": RESTART_DELAY})

    def start(self, build_dir, processes, deadline):
        """stickyproxy inside the namespace (`ip netns exec` execs it: the pid is the proxy's), waited
        for until every worker is ready."""
        for folder in ("run", "state"):
            os.makedirs(os.path.join(self.work_dir, folder), exist_ok=True)
        argv = ["ip", "netns", "exec", self.namespace, os.path.join(build_dir, "stickyproxy"), "-c", self.config]
        self.process = processes.start("stickyproxy-" + self.name, argv, self.log)
        self.wait_ready(deadline)
        log("%s: stickyproxy (pid %d) in %s on %s:%d, metrics :%d, 4 workers ready"
            % (self.name, self.process.pid, self.namespace, self.address, PROXY_PORT, METRICS_PORT))

    def wait_ready(self, deadline):
        last = "no answer yet"
        end = time.monotonic() + deadline.cap(60.0)
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise TestFailure("%s: stickyproxy exited with status %s\n%s"
                                  % (self.name, self.process.returncode, tail(self.log)))
            try:
                states = {name: worker.get("state") for name, worker in self.status().items()}
                if len(states) == len(WORKERS) and all(state == "ready" for state in states.values()):
                    return
                last = "workers %s" % states
            except (OSError, TestFailure, ValueError) as error:
                last = str(error)
            time.sleep(0.2)
        raise TestFailure("%s: not ready within 60 s (%s)\n%s" % (self.name, last, tail(self.log)))

    def status(self):
        """/status.json's workers by name."""
        status, body = http_get(METRICS_PORT, "/status.json", timeout=5.0, host=self.address)
        if status != 200:
            raise TestFailure("%s: GET /status.json answered %d" % (self.name, status))
        return {worker["name"]: worker for worker in json.loads(body.decode("utf-8"))["workers"]}


# ---------------------------------------------------------------------------- the ALB stand-in

HAPROXY_CONFIG = """\
# Written by tests/deploy/two_hosts_netns.py: the ALB stand-in in front of the two hosts.
global
    log stdout format raw local0
    stats socket {socket} mode 600 level admin
    maxconn 2000
    nbthread 1

defaults
    mode http
    log global
    log-format "%Ts.%ms srv=%s status=%ST term=%tsc retries=%rc ta=%Ta req=\\"%HM %HP\\""
    option forwardfor
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response
    timeout connect 2s
    timeout client 120s
    timeout server 90s
    timeout http-request 30s
    timeout http-keep-alive 75s
    timeout queue 30s

frontend alb
    bind 127.0.0.1:{port}
    default_backend hosts

backend hosts
    balance roundrobin
    cookie {cookie} insert indirect nocache httponly
    option httpchk GET /ping
    http-check expect status 200
    default-server check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
    http-response set-header {served_by} %[srv_name]
{servers}
"""

HAPROXY_LINE = re.compile(r"^(\d+)\.(\d+) srv=(\S+) status=(-?\d+) term=(\S+) retries=(\S+) ta=(-?\d+) req=\"(.*)\"")


class Alb:
    """HAProxy on a kernel-chosen loopback port, in front of the hosts."""

    def __init__(self, work_dir, hosts):
        self.work_dir = work_dir
        self.hosts = hosts
        self.port = free_tcp_port()
        self.socket_path = os.path.join(work_dir, "haproxy.sock")
        self.config = os.path.join(work_dir, "haproxy.cfg")
        self.log = os.path.join(work_dir, "haproxy.log")
        self.process = None

    def start(self, processes, deadline):
        servers = "\n".join("    server %s %s:%d cookie %s" % (host.name, host.address, PROXY_PORT, host.name)
                            for host in self.hosts)
        with open(self.config, "w") as out:
            out.write(HAPROXY_CONFIG.format(socket=self.socket_path, port=self.port, cookie=ALB_COOKIE,
                                            served_by=SERVED_BY, servers=servers))
        command(["haproxy", "-c", "-q", "-f", self.config])
        self.process = processes.start("haproxy", ["haproxy", "-db", "-f", self.config], self.log)
        self.wait_states({host.name: "UP" for host in self.hosts}, deadline.cap(30.0))
        log("HAProxy (pid %d) on 127.0.0.1:%d in front of %s" % (
            self.process.pid, self.port, ", ".join("%s %s:%d" % (h.name, h.address, PROXY_PORT) for h in self.hosts)))

    def admin(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5.0)
            client.connect(self.socket_path)
            client.sendall((line + "\n").encode("ascii"))
            chunks = []
            while True:
                data = client.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")

    def states(self):
        """{server: "UP" | "DOWN" | ...} from `show stat`."""
        lines = self.admin("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        found = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "hosts" and row.get("svname") not in ("BACKEND", "FRONTEND"):
                found[row["svname"]] = row.get("status", "").split(" ")[0]
        return found

    def wait_states(self, wanted, bound):
        """Until HAProxy shows each server of `wanted` in its state; returns the seconds it took."""
        began = time.monotonic()
        last = {}
        while time.monotonic() - began < bound:
            if self.process.poll() is not None:
                raise TestFailure("haproxy exited with status %s\n%s" % (self.process.returncode, tail(self.log)))
            try:
                last = self.states()
            except OSError as error:
                last = {"socket": str(error)}
            if all(last.get(name) == state for name, state in wanted.items()):
                return time.monotonic() - began
            time.sleep(0.05)
        raise TestFailure("HAProxy did not show %s within %.0f s (%s)" % (wanted, bound, last))

    def log_figures(self):
        """(lines, Counter of status, Counter of server, [lines of a 5xx or of no answer (-1)], redispatched,
        cookie for a down server)."""
        statuses, servers, errors = collections.Counter(), collections.Counter(), []
        redispatched = down_cookie = lines = 0
        try:
            with open(self.log, "rb") as source:
                text = source.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            match = HAPROXY_LINE.match(line)
            if not match:
                continue
            lines += 1
            status = int(match.group(4))
            statuses[status] += 1
            servers[match.group(3)] += 1
            if status >= 500 or status < 0:
                errors.append(line)
            if match.group(6).startswith("+"):
                redispatched += 1
            if len(match.group(5)) >= 3 and match.group(5)[2] == "D":
                down_cookie += 1
        return lines, statuses, servers, errors, redispatched, down_cookie


# ---------------------------------------------------------------------------- the users

class Seen:
    """One failure a user met: where, when, and how the answer (if any) came."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


class HostRecorder(Recorder):
    """Recorder, plus every failure with the host the user was on and the host that answered, and
    the answers per phase and host."""

    def __init__(self, started, run):
        super().__init__(started, moves_expected=True)
        self.run = run
        self.seen = []
        self.answers = collections.Counter()  # (phase, host) -> answers
        self.resent_seen = []  # Seen of each request sent again (app_flow.User.send_once)
        self.reasks = collections.Counter()  # phase -> chat questions asked again after a cut stream

    def count(self, attribute, key=None):
        super().count(attribute, key)
        if attribute == "reasked":
            with self.lock:
                self.reasks[self.run.phase] += 1

    def sent_again(self, user, route):
        """A request sent again on a new connection: its kept-alive one closed without an answer."""
        with self.lock:
            self.resent_seen.append(Seen(phase=self.run.phase, at=time.monotonic(), user=user.name, home=user.home(),
                                         sent_at=user.request_started, route=route))

    def answered(self, served_by):
        with self.lock:
            self.answers[(self.run.phase, served_by or "-")] += 1

    def failure(self, user, failure, upload_path):
        super().failure(user, failure, upload_path)
        with self.lock:
            self.seen.append(Seen(phase=self.run.phase, at=time.monotonic(), user=user.name, home=user.home(),
                                  served_by=user.last_served_by, status=user.last_status, worker=user.last_worker,
                                  sent_at=user.request_started, route=failure.route, message=failure.message,
                                  session=failure.session, text=failure.text))


class HostUser(User):
    """app_flow.User that notes which host answered each request (HAProxy's X-Served-By)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.host = None  # the host of the last answer
        self.host_before = None  # the user's host when the request under way was sent
        self.last_served_by = self.last_status = self.last_worker = None
        self.request_started = None
        self.in_flight = None  # the route of the request under way, until its answer is read
        self.flow_host = None  # the host that answered the flow's first request: where its session lives
        self.flows_at = {}  # phase -> flows_done when it began

    def send(self, route, method, path, body=None, content_type=None, accept="application/json"):
        self.host_before = self.host
        self.last_served_by = self.last_status = self.last_worker = None
        self.request_started = time.monotonic()
        self.in_flight = route
        try:
            response, sent = super().send(route, method, path, body, content_type, accept)
        except BaseException:
            self.in_flight = None
            raise
        self.last_served_by = response.getheader(SERVED_BY)
        if self.flow_host is None:
            self.flow_host = self.last_served_by
        self.last_status = response.status
        self.last_worker = response.getheader("X-Worker")
        if self.last_served_by:
            self.host = self.last_served_by
        self.recorder.answered(self.last_served_by)
        return response, sent

    def finish(self, route, method, path, response, sent, record=True):
        try:
            return super().finish(route, method, path, response, sent, record)
        finally:
            self.in_flight = None

    def send_once(self, route, method, path, body, headers):
        self.recorder.sent_again(self, route)
        return super().send_once(route, method, path, body, headers)

    def flow(self):
        self.flow_host = None
        return super().flow()

    def home(self):
        """The host of the session the request under way belongs to: where the flow began (its
        upload), or before the first flow, the host of the last answer."""
        return self.flow_host or self.host_before

    def chat_once(self):
        try:
            super().chat_once()
        finally:
            self.in_flight = None


# ---------------------------------------------------------------------------- the run

class TwoHostsRun:
    def __init__(self, args, build_dir, work_dir, processes, deadline):
        self.args = args
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.deadline = deadline
        self.network = Network()
        self.hosts = [Host(letter, os.path.join(work_dir, "host" + letter.lower())) for letter in HOSTS]
        self.a, self.b = self.hosts
        self.alb = None
        self.users = []
        self.recorder = None
        self.phase = PHASE_START
        self.phase_times = {}  # phase -> (began, ended)
        self.members = {}  # phase -> {host: [user names]} when it began
        self.kills = []  # (host, worker, pid, users on it)
        self.kill_time = None
        self.stop_done = None  # when host A's proxy had exited after its SIGTERM
        self.checks = []
        self.in_flight_at = {}  # phase -> [(user, route)] under way when host A was stopped or killed
        self.late_phases = []  # phases that ended at PHASE_BOUND with users not through a flow

    # the attributes User reads from its `args`
    @property
    def seed(self):
        return self.args.seed

    @property
    def think_min(self):
        return self.args.think_min

    @property
    def think_max(self):
        return self.args.think_max

    def check(self, name, figure, holds):
        self.checks.append([name, figure, holds])
        return holds

    # -- setting up

    def set_up(self):
        self.network.check_machine()
        missing = missing_binaries(self.build_dir)
        if missing:
            raise UsageError("missing: %s (build them first)" % ", ".join(missing))
        self.network.remove_stale()
        self.network.pick_prefix()
        for index, host in enumerate(self.hosts, start=1):
            host.namespace, host.address, host.outside = self.network.add_host(host.letter, index)
        log("namespaces %s on 10.%d.0.0/16 (host A %s, host B %s)" % (
            ", ".join(self.network.namespaces), self.network.prefix, self.a.address, self.b.address))
        secret = os.path.join(self.work_dir, "routing-secret")
        write_routing_secret(secret, "two_hosts_netns %d" % self.args.seed)
        for host in self.hosts:
            host.write_config(self.build_dir, secret)
            host.start(self.build_dir, self.processes, self.deadline)
        self.alb = Alb(self.work_dir, self.hosts)
        self.alb.start(self.processes, self.deadline)

    # -- phases

    def begin_phase(self, phase):
        now = time.monotonic()
        if self.phase in self.phase_times:
            self.phase_times[self.phase] = (self.phase_times[self.phase][0], now)
        self.phase = phase
        self.phase_times[phase] = (now, None)
        for user in self.users:
            user.flows_at[phase] = user.flows_done
        self.members[phase] = self.users_by_host()
        log("phase: %s (users on %s)" % (phase, ", ".join(
            "%s %d" % (name, len(names)) for name, names in sorted(self.members[phase].items()))))

    def users_by_host(self):
        grouped = collections.defaultdict(list)
        for user in self.users:
            grouped[user.host or "-"].append(user.name)
        return dict(grouped)

    def wait_flows(self, users, phase, what):
        """Until each of `users` has completed a flow since `phase` began (bounded)."""
        end = time.monotonic() + self.deadline.cap(PHASE_BOUND)
        while time.monotonic() < end and self.deadline.remaining() > 60.0:
            behind = [user for user in users if user.flows_done <= user.flows_at[phase] and user.is_alive()]
            if not behind:
                return True
            time.sleep(0.2)
        behind = [user.name for user in users if user.flows_done <= user.flows_at[phase]]
        self.late_phases.append("%s: %d users (%s)" % (phase, len(behind), ", ".join(behind[:6])))
        log("%s: %s had not completed a flow within %.0f s" % (what, ", ".join(behind[:10]), PHASE_BOUND))
        return False

    def start_users(self, first, count, started, ramp):
        far = started + 10 * 3600.0  # the end is set when the last phase is over
        users = [HostUser(index, self, self.alb.port, self.data, self.recorder, time.monotonic() + ramp * n / count,
                          far, far, finish_flows=True)
                 for n, index in enumerate(range(first, first + count))]
        self.users += users
        for user in users:
            user.flows_at[self.phase] = 0
            user.start()
        return users

    def go(self):
        self.set_up()
        whole = Dataset(self.build_dir, os.path.join(self.work_dir, "data-whole"), self.args.seed, self.args.wards,
                        None, self.deadline.cap(60.0))
        chunked = Dataset(self.build_dir, os.path.join(self.work_dir, "data-chunked"), self.args.seed + 1,
                          CHUNKED_WARDS, CHUNKED_DETAIL, self.deadline.cap(60.0))
        if len(chunked.zip) <= CHUNK_SIZE:
            raise UsageError("gendata made a %d byte zip: one chunk, expected several" % len(chunked.zip))
        self.data = {UPLOAD_WHOLE: whole, UPLOAD_CHUNKED: chunked}
        started = time.monotonic()
        self.started = started
        self.recorder = HostRecorder(started, self)

        # start: every user through a flow
        self.begin_phase(PHASE_START)
        first = self.start_users(0, self.args.users, started, ramp=5.0)
        self.wait_flows(first, PHASE_START, "start")

        # worker kill: the busiest worker on each host
        self.begin_phase(PHASE_KILL)
        for host in self.hosts:
            self.kill_worker(host)
        for host, worker, _pid, _users in self.kills:
            self.wait_worker_ready(host, worker)
        self.wait_flows(self.users, PHASE_KILL, "worker kill")

        # A stopped: SIGTERM, graceful; HAProxy not told
        self.begin_phase(PHASE_STOP)
        stopped_users = self.users_of(self.a, PHASE_STOP)
        self.wait_in_flight(stopped_users, PHASE_STOP)
        self.stop_host(self.a, signal.SIGTERM)
        self.wait_flows(self.users, PHASE_STOP, "A stopped")

        # A back: fresh workers, late users
        self.begin_phase(PHASE_BACK)
        self.a.start(self.build_dir, self.processes, self.deadline)
        took = self.alb.wait_states({self.a.name: "UP"}, self.deadline.cap(30.0))
        log("HAProxy marked %s up %.1f s after it was ready" % (self.a.name, took))
        late = self.start_users(len(self.users), self.args.late_users, started, ramp=2.0)
        self.wait_flows(late, PHASE_BACK, "A back")

        # A gone: SIGKILL to everything in A's namespace
        self.begin_phase(PHASE_GONE)
        gone_users = self.users_of(self.a, PHASE_GONE)
        pids = self.network.pids_in(self.a.namespace)  # read first: the kill follows the wait at once
        self.wait_in_flight(gone_users, PHASE_GONE)
        self.kill_host(self.a, pids)
        self.wait_flows(self.users, PHASE_GONE, "A gone")

        self.begin_phase(PHASE_END)
        now = time.monotonic()
        for user in self.users:
            user.stop_at = now
            user.hard_stop = now + 60.0
        for user in self.users:
            user.join(timeout=max(1.0, user.hard_stop - time.monotonic() + 5.0))
        self.phase_times[PHASE_END] = (now, time.monotonic())
        return self.report(stopped_users, gone_users)

    def wait_in_flight(self, users, phase):
        """Until one of `users` has an upload under way (HAProxy cannot send one again: it does not
        hold the body whole), else any request (each wait bounded), so that the stop or kill that
        follows meets requests in flight; notes which were."""
        under_way = []
        for wanted in (UPLOAD_ROUTES, None):
            end = time.monotonic() + self.deadline.cap(IN_FLIGHT_WAIT)
            while time.monotonic() < end:
                under_way = [(user.name, user.in_flight) for user in users if user.in_flight]
                if any(wanted is None or route in wanted for _, route in under_way):
                    self.in_flight_at[phase] = under_way
                    return
                time.sleep(0.001)
        self.in_flight_at[phase] = under_way

    def under_way(self, phase):
        return ", ".join("%s %s" % item for item in self.in_flight_at.get(phase, [])) or "none"

    def users_of(self, host, phase):
        return [user for user in self.users if user.name in self.members[phase].get(host.name, [])]

    def kill_worker(self, host):
        on = collections.Counter(user.worker for user in self.users if user.host == host.name and user.worker)
        if not on:
            raise TestFailure("%s: no user on it to kill a worker under" % host.name)
        worker, count = on.most_common(1)[0]
        pid = int(host.status()[worker]["pid"])
        if parent_of(pid) != host.process.pid:
            raise TestFailure("%s: %s's pid %d is not a child of its proxy (pid %d)"
                              % (host.name, worker, pid, host.process.pid))
        os.kill(pid, signal.SIGKILL)
        self.kills.append((host, worker, pid, count))
        log("%s: kill -9 %s (pid %d), the worker of %d of its users" % (host.name, worker, pid, count))

    def wait_worker_ready(self, host, worker):
        end = time.monotonic() + self.deadline.cap(30.0)
        state = None
        while time.monotonic() < end:
            now = host.status().get(worker, {})
            state = now.get("state")
            if state == "ready" and now.get("pid") not in [kill[2] for kill in self.kills]:
                return
            time.sleep(0.2)
        raise TestFailure("%s: %s not ready again within 30 s of its kill (%s)" % (host.name, worker, state))

    def stop_host(self, host, signal_number):
        pid = host.process.pid
        began = time.monotonic()
        host.process.send_signal(signal_number)
        log("%s: %s to stickyproxy (pid %d), HAProxy not told; under way: %s" % (
            host.name, signal.Signals(signal_number).name, pid, self.under_way(PHASE_STOP)))
        took = self.alb.wait_states({host.name: "DOWN"}, self.deadline.cap(STOP_BOUND))
        log("HAProxy marked %s down %.1f s after the stop" % (host.name, took))
        try:
            host.process.wait(timeout=self.deadline.cap(STOP_BOUND))
        except subprocess.TimeoutExpired:
            raise TestFailure("%s: stickyproxy did not exit within %.0f s of SIGTERM" % (host.name, STOP_BOUND))
        self.stop_done = time.monotonic()
        log("%s: stickyproxy exited (status %s) %.1f s after the stop" % (host.name, host.process.returncode,
                                                                         self.stop_done - began))

    def kill_host(self, host, pids):
        self.kill_time = time.monotonic()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log("%s: SIGKILL to every process in %s (%d: the proxy and its workers); under way: %s" % (
            host.name, host.namespace, len(pids), self.under_way(PHASE_GONE)))
        took = self.alb.wait_states({host.name: "DOWN"}, self.deadline.cap(STOP_BOUND))
        log("HAProxy marked %s down %.1f s after the kill" % (host.name, took))
        host.process.wait(timeout=self.deadline.cap(10.0))

    # -- judging

    def classify(self, seen, stopped, gone):
        """What a failure was: "app answer" (the app's own answer for a session it does not know,
        from the other host), "in flight at the kill", or "unexpected"."""
        app_answer = (seen.session and seen.status is not None and seen.status < 500 and seen.worker
                      and seen.served_by and seen.served_by != seen.home and "routing key" not in seen.message)
        if seen.phase == PHASE_STOP and seen.user in stopped and app_answer:
            return "app answer"
        if seen.phase == PHASE_GONE and seen.user in gone:
            if app_answer:
                return "app answer"
            if seen.sent_at is not None and seen.sent_at <= self.kill_time + IN_FLIGHT_SLACK and not seen.worker:
                return "in flight at the kill"
        return "unexpected"

    def classify_resend(self, seen, stopped, gone):
        """A request sent again was "cut at the stop" or "cut at the kill" when it was one of A's
        users' sent while A was stopping or at the kill; else "unexpected"."""
        if seen.home != self.a.name or seen.sent_at is None:
            return "unexpected"
        if seen.phase == PHASE_STOP and seen.user in stopped and seen.sent_at <= self.stop_done + IN_FLIGHT_SLACK:
            return "cut at the stop"
        if seen.phase == PHASE_GONE and seen.user in gone and seen.sent_at <= self.kill_time + IN_FLIGHT_SLACK:
            return "cut at the kill"
        return "unexpected"

    def report(self, stopped_users, gone_users):
        stopped = {user.name for user in stopped_users}
        gone = {user.name for user in gone_users}
        kinds = collections.defaultdict(collections.Counter)  # phase -> kind@group -> count
        per_user = collections.defaultdict(collections.Counter)  # (phase, user) -> count
        unexpected, app_answers = [], collections.Counter()
        for seen in self.recorder.seen:
            kind = self.classify(seen, stopped, gone)
            group = "A" if seen.home == self.a.name else "B" if seen.home == self.b.name else "-"
            kinds[seen.phase]["%s/%s" % (group, kind)] += 1
            per_user[(seen.phase, seen.user)][kind] += 1
            if kind == "unexpected":
                unexpected.append(seen)
            else:
                app_answers[(seen.phase, seen.route, seen.status, seen.served_by or "-", kind,
                             seen.text or " ".join(seen.message.split())[:70])] += 1

        resend_kinds = collections.defaultdict(collections.Counter)  # phase -> kind -> count
        resends_per_user = collections.Counter()
        odd_resends = []
        for seen in self.recorder.resent_seen:
            kind = self.classify_resend(seen, stopped, gone)
            resend_kinds[seen.phase][kind] += 1
            resends_per_user[seen.user] += 1
            if kind == "unexpected":
                odd_resends.append(seen)

        rows = []
        for phase in PHASES:
            if phase not in self.phase_times:
                continue
            began, ended = self.phase_times[phase]
            members = self.members.get(phase, {})
            following = PHASES[PHASES.index(phase) + 1:]
            flows = 0
            for user in self.users:
                if phase in user.flows_at:
                    after = [user.flows_at[later] for later in following if later in user.flows_at]
                    flows += (after[0] if after else user.flows_done) - user.flows_at[phase]
            counts = kinds.get(phase, collections.Counter())
            rows.append([phase, "%.0f s" % ((ended or time.monotonic()) - began),
                         "%d/%d" % (len(members.get(self.a.name, [])), len(members.get(self.b.name, []))),
                         self.recorder.answers[(phase, self.a.name)], self.recorder.answers[(phase, self.b.name)],
                         self.recorder.answers[(phase, "-")], flows,
                         counts["A/app answer"], counts["A/in flight at the kill"],
                         sum(n for key, n in counts.items() if key.startswith("A/") and key.endswith("unexpected")),
                         sum(n for key, n in counts.items() if key.startswith("B/")),
                         sum(n for key, n in counts.items() if key.startswith("-/")),
                         sum(resend_kinds[phase].values()), self.recorder.reasks[phase]])
        notes = ["under way on host A at the %s: %s" % (what, self.under_way(phase))
                 for phase, what in ((PHASE_STOP, "SIGTERM"), (PHASE_GONE, "SIGKILL")) if phase in self.in_flight_at]
        print_table("per phase (users on A/B when it began; answers by host; flows completed; failures of A's users "
                    "by kind, of B's users, of users without a host yet; requests sent again on a new connection "
                    "after a kept-alive one closed unanswered, as a browser does; chat questions asked again after "
                    "a cut stream, as the page does)",
                    ["phase", "took", "users A/B then", "by A", "by B", "no host", "flows", "A: app answer",
                     "A: in flight", "A: other", "B: any", "-: any", "sent again", "chat re-asked"], rows,
                    notes=notes)

        print_table("what the users of host A saw (every failure that was not unexpected)",
                    ["phase", "route", "status", "answered by", "kind", "count", "text"],
                    [[phase, route, status, served_by, kind, count, text] for
                     (phase, route, status, served_by, kind, text), count in sorted(app_answers.items())],
                    align="llrllrl")
        if odd_resends:
            print_table("requests sent again outside A's stop and kill (%d; the first 10)" % len(odd_resends),
                        ["t", "phase", "user", "host", "route"],
                        [["%.1f" % (seen.at - self.started), seen.phase, seen.user, seen.home or "-", seen.route]
                         for seen in odd_resends[:10]], align="rllll")
        if unexpected:
            print_table("unexpected failures (%d; the first 20)" % len(unexpected),
                        ["t", "phase", "user", "host", "answered by", "status", "route", "message"],
                        [["%.1f" % (seen.at - self.started), seen.phase, seen.user, seen.home or "-",
                          seen.served_by or "-", seen.status if seen.status is not None else "-", seen.route,
                          " ".join(seen.message.split())[:100]] for seen in unexpected[:20]], align="rllllrll")

        # the checks
        before_stop = [seen for seen in self.recorder.seen if seen.phase in (PHASE_START, PHASE_KILL)]
        self.check("start and worker kill: no user on either host saw a failure",
                   "%d failures" % len(before_stop), not before_stop)
        b_failures = [seen for seen in self.recorder.seen if seen.home == self.b.name]
        self.check("host B's users saw no failure in any phase", "%d failures" % len(b_failures), not b_failures)
        self.check("no failure but the app's answer and requests in flight at the kill",
                   "%d unexpected" % len(unexpected), not unexpected)
        for phase, users in ((PHASE_STOP, stopped_users), (PHASE_GONE, gone_users)):
            names = {user.name for user in users}
            most = max([count for name in names for count in per_user[(phase, name)].values()] or [0])
            saw = sum(1 for name in names if per_user[(phase, name)])
            self.check("%s: each of A's %d users saw at most one failure of each kind" % (phase, len(users)),
                       "%d saw one, the most of a kind by one user %d" % (saw, most), most <= 1)
            moved = [user for user in users if user.host == self.b.name]
            finished = [user for user in users if user.flows_done > user.flows_at[phase] and user.host == self.b.name]
            self.check("%s: every user of A went on at B and completed a flow there" % phase,
                       "%d of %d on B, %d completed a flow" % (len(moved), len(users), len(finished)),
                       len(finished) == len(users) and len(users) > 0)
        in_flight = kinds[PHASE_GONE]["A/in flight at the kill"]
        self.check("A gone: requests cut at the kill at most one per user of A",
                   "%d cut for %d users" % (in_flight, len(gone_users)), in_flight <= len(gone_users))
        cut_at_stop = resend_kinds[PHASE_STOP]["cut at the stop"]
        cut_at_kill = resend_kinds[PHASE_GONE]["cut at the kill"]
        self.check("requests sent again only by A's users, sent as A stopped or died, at most one each",
                   "%d at the stop, %d at the kill, %d other; at most %d by one user" % (
                       cut_at_stop, cut_at_kill, len(odd_resends), max(resends_per_user.values() or [0])),
                   not odd_resends and max(resends_per_user.values() or [0]) <= 1)

        for host, worker, _pid, count in self.kills:
            figures = LogFigures(read_log_lines(host.log))
            self.check("%s: kill -9 %s: its users moved, announced, their sessions adopted" % (host.name, worker),
                       "%d users on it; %d moves, %d unannounced, %d wrong prev; %d adoptions from %s" % (
                           count, figures.moves, len(figures.unannounced), len(figures.wrong_prev),
                           figures.adopted[worker], worker),
                       figures.moves > 0 and not figures.unannounced and not figures.wrong_prev
                       and figures.adopted[worker] >= figures.moves)
            self.check("%s: its proxy logged no 5xx" % host.name, "%d of %d requests" % (
                len(figures.server_errors), figures.requests), not figures.server_errors)
            for line in (figures.unannounced + figures.wrong_prev + figures.server_errors)[:8]:
                print("    " + line)

        lines, statuses, servers, errors, redispatched, down_cookie = self.alb.log_figures()
        print_table("HAProxy's log", ["requests", "by status", "by server", "redispatched", "cookie named a down host"],
                    [[lines, " ".join("%d: %d" % item for item in sorted(statuses.items())),
                      " ".join("%s: %d" % item for item in sorted(servers.items())), redispatched, down_cookie]])
        cut = in_flight + cut_at_stop + cut_at_kill
        self.check("HAProxy failed or closed unanswered no request but those cut at A's stop or kill",
                   "%d (5xx or none), %d cut" % (len(errors), cut), len(errors) <= cut)
        for line in errors[:8]:
            print("    " + line)
        crashed = [user.crashed for user in self.users if user.crashed]
        self.check("no user thread crashed", "%d" % len(crashed), not crashed)
        for line in crashed[:5]:
            print("    " + line)
        hung = [user.name for user in self.users if user.is_alive()]
        self.check("every user finished", "%d still running" % len(hung), not hung)
        self.check("every phase saw each user concerned through a flow within %.0f s" % PHASE_BOUND,
                   "; ".join(self.late_phases) or "all %d phases" % (len(PHASES) - 1), not self.late_phases)
        print_table("verdict", ["check", "figure", "verdict"],
                    [[name, figure, verdict(holds)] for name, figure, holds in self.checks], align="lll")
        return all(holds for _, _, holds in self.checks)


def interrupt(signal_number, _frame):
    raise Interrupted("interrupted by %s" % signal.Signals(signal_number).name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy, stickyproxy-backend and "
                        "stickyproxy-gendata")
    parser.add_argument("--users", type=int, default=40, help="users from the start (default 40)")
    parser.add_argument("--late-users", type=int, default=20, help="users arriving when host A is back (default 20)")
    parser.add_argument("--wards", type=int, default=60, help="wards in the users' data (default 60)")
    parser.add_argument("--think-min", type=float, default=0.5, help="shortest think time, seconds (default 0.5)")
    parser.add_argument("--think-max", type=float, default=1.5, help="longest think time, seconds (default 1.5)")
    parser.add_argument("--seed", type=int, default=7, help="gendata seed, users' and the secret's label (default 7)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--timeout", type=float, default=480.0, help="bound on the whole run, seconds (default 480)")
    args = parser.parse_args()
    if args.users < 4 or args.late_users < 2:
        parser.error("--users must be at least 4 and --late-users at least 2")
    build_dir = os.path.abspath(args.build_dir)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, interrupt)
    deadline, work_dir, processes = begin_run(args.timeout, "sp-two-hosts-")
    run = TwoHostsRun(args, build_dir, work_dir, processes, deadline)
    status = 1
    try:
        passed = run.go()
        log("%s in %.1f s" % ("PASS" if passed else "FAIL", args.timeout - deadline.remaining()))
        status = 0 if passed else 1
    except Skip as reason:
        log("SKIP: %s" % reason)
        status = SKIP
    except UsageError as problem:
        print("two_hosts_netns: %s" % problem, file=sys.stderr)
        status = 2
    except (TestFailure, Interrupted, OSError, http.client.HTTPException, ValueError) as failure:
        log("FAIL: %s" % failure)
        for path in [host.log for host in run.hosts] + ([run.alb.log] if run.alb else []):
            if os.path.exists(path):
                print(tail(path, 20), file=sys.stderr)
        status = 1
    finally:
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)  # the clean-up runs to its end
        for user in run.users:
            user.stop_at = user.hard_stop = time.monotonic()
        tear_down(processes, None, None, work_dir, args.keep_temp)
        run.network.remove()
    return status


if __name__ == "__main__":
    sys.exit(main())
