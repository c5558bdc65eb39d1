"""What the browser tests share: processes stopped by pid, a DevTools-protocol client for
Chromium over --remote-debugging-pipe, error recording, and a page to evaluate and wait on.

    from browser_support import (Deadline, DevTools, ErrorRecorder, Page, ProcessSet, TestFailure, ...)

Each test script (ui_flow_test.py, status_page_test.py) imports this module from its own
directory. Python standard library only.
"""

import base64
import ctypes
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time

CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]


def log(message):
    """A progress line, prefixed with the running test's name."""
    name = os.path.splitext(os.path.basename(sys.argv[0] or "browser_test"))[0]
    print("%s: %s" % (name, message), flush=True)


class TestFailure(Exception):
    """The system under test misbehaved: the message says what was expected and what happened."""


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def cap(self, seconds):
        """The smaller of `seconds` and what is left of the whole run."""
        return min(seconds, self.remaining())


class ProcessSet:
    """Processes this test started, stopped by pid: SIGTERM, then SIGKILL after a grace period.

    Each process leads its own session, so what it spawned (workers, renderer processes) can be
    found by its process group, whose id is the pid we started.
    """

    def __init__(self):
        self.processes = []  # (name, Popen), in start order

    def start(self, name, argv, log_path, **kwargs):
        log_file = open(log_path, "ab")
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                       start_new_session=True, **kwargs)
        finally:
            log_file.close()
        self.processes.append((name, process))
        return process

    @staticmethod
    def _descendants(pid):
        """Pids below `pid`, read from /proc before we signal anything (children get reparented)."""
        found = []
        pending = [pid]
        while pending:
            parent = pending.pop()
            try:
                with open("/proc/%d/task/%d/children" % (parent, parent)) as children:
                    kids = [int(token) for token in children.read().split()]
            except OSError:
                kids = []
            found.extend(kids)
            pending.extend(kids)
        return found

    @staticmethod
    def _alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def stop_all(self, grace=10.0):
        for name, process in reversed(self.processes):
            if process.poll() is not None:
                self._kill_group(process.pid)
                continue
            descendants = self._descendants(process.pid)
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) ignored SIGTERM for %.0f s: SIGKILL" % (name, process.pid, grace))
                process.kill()
                process.wait()
            # Whatever it started and left behind goes too.
            for pid in descendants:
                if self._alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self._kill_group(process.pid)
        self.processes = []

    @staticmethod
    def _kill_group(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def become_subreaper():
    """Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), so that
    helpers that outlive their parent (Chromium's zygotes, the workers of a killed proxy) are
    reparented to us, not to init, and reap_orphans() can stop and reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def begin_run(timeout, temp_prefix):
    """What every test and load script starts with: adopt its orphans (become_subreaper), bound the
    whole run, and make its temp dir and process set. Returns (deadline, work_dir, processes);
    tear_down() undoes it."""
    become_subreaper()
    return Deadline(timeout), tempfile.mkdtemp(prefix=temp_prefix), ProcessSet()


def reap_orphans(grace=3.0):
    """SIGKILLs and reaps whatever children are left after ProcessSet.stop_all(): by then every
    child of ours is a descendant of a process this test started."""
    end = time.monotonic() + grace
    while True:
        pids = []
        for tid in os.listdir("/proc/self/task"):
            try:
                with open("/proc/self/task/%s/children" % tid) as children:
                    pids += [int(token) for token in children.read().split()]
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return
        if time.monotonic() >= end:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------------- the routing cookie

ROUTE_MAC_LABEL = "stickyproxy-route-1"  # the first line of the message the proxy signs
ROUTING_KEY = re.compile(r"[0-9a-f]{32}")


def write_routing_secret(path, label="stickyproxy tests"):
    """Writes a routing secret file (one line of 64 hex characters, mode 0600) for a proxy config's
    routing.secret_file, derived from `label` so that a run is repeatable; returns the secret."""
    secret = hashlib.sha256(label.encode("utf-8")).hexdigest()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    return secret


def routing_mac(secret, key, worker="", pinned_at=""):
    """The MAC of a routing cookie: the first 16 bytes of HMAC-SHA-256 over the label, the key, the
    worker and the pin time (empty for an unpinned key), as 32 lowercase hex characters."""
    message = "%s\n%s\n%s\n%s" % (ROUTE_MAC_LABEL, key, worker, pinned_at)
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def routing_cookie(secret, key, worker=None, pinned_at=None):
    """The value of the `stickyproxy` cookie the proxy would issue for session `key` (32 lowercase
    hex) under `secret`: unpinned `K.M`, or pinned to `worker` since `pinned_at` (Unix seconds)
    `K.W.T.M`. Every script that makes up sessions uses this one function."""
    if worker is None:
        return "%s.%s" % (key, routing_mac(secret, key))
    stamp = "%x" % int(time.time() if pinned_at is None else pinned_at)
    return "%s.%s.%s.%s" % (key, worker, stamp, routing_mac(secret, key, worker, stamp))


def session_key(label):
    """A session key (32 lowercase hex digits), the same for the same label."""
    return hashlib.md5(label.encode("utf-8")).hexdigest()


class RoutingSecret:
    """A routing secret file a test writes for its proxy (routing.secret_file), and the signed
    `stickyproxy` cookie values of made-up sessions under it. The one way every test and load
    script crafts session cookies:

        secret = RoutingSecret(work_dir)
        start_proxy(..., overrides=secret.overrides())
        headers = {"Cookie": "stickyproxy=" + secret.cookie("user-1")}
    """

    def __init__(self, work_dir, label="stickyproxy tests"):
        self.path = os.path.join(work_dir, "routing-secret")
        self.secret = write_routing_secret(self.path, label)

    def overrides(self, more=None):
        """write_proxy_config overrides that point the proxy at this file, plus `more`."""
        overrides = {"routing.secret_file": self.path}
        overrides.update(more or {})
        return overrides

    def cookie(self, label, worker=None, pinned_at=None):
        """The signed cookie value of the session session_key(label) (routing_cookie)."""
        return routing_cookie(self.secret, session_key(label), worker, pinned_at)


def cookie_as_issued(port, value, path="/ping", name="stickyproxy", timeout=10.0):
    """The routing cookie a browser holding `value` keeps after one request to the proxy on `port`:
    the value the proxy sets (it pins a session to its worker in the cookie), or `value` when it
    sets none. Raises TestFailure when the proxy gives the session another key."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Cookie": "%s=%s" % (name, value)})
        response = connection.getresponse()
        response.read()
        set_cookies = response.msg.get_all("Set-Cookie") or []
    finally:
        connection.close()
    for header in set_cookies:
        pair = header.split(";", 1)[0].strip()
        if pair.startswith(name + "="):
            issued = pair[len(name) + 1:]
            if routing_key(issued) != routing_key(value):
                raise TestFailure("the proxy replaced the session of cookie %s with %s" % (value, issued))
            return issued
    return value


def routing_key(cookie_value):
    """The session key in a `stickyproxy` cookie value (signed or a bare key of the previous
    version), or None when it holds none."""
    key = (cookie_value or "").split(".", 1)[0]
    return key if ROUTING_KEY.fullmatch(key) else None


def routing_pin(cookie_value):
    """The worker a signed cookie value is pinned to, or None."""
    parts = (cookie_value or "").split(".")
    return parts[1] if len(parts) == 4 else None


# ---------------------------------------------------------------------------- the proxy

def free_tcp_port():
    """A port the kernel picked for us on 127.0.0.1 (bind to port 0), released for the proxy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_proxy_config(work_dir, worker_binary, port, metrics_port, workers=4, overrides=None, worker_args=""):
    """The shape of conf/prod.conf, on loopback: `workers` processes of `worker_binary` (which takes
    --name, --listen and --state-dir like stickyproxy-backend) on Unix sockets in work_dir.

    `overrides` maps "section.key" to a value, e.g. {"routing.drain_idle": "2s"}: it replaces the
    key where this config sets it and is added to the section otherwise. `worker_args` is appended
    to every worker's args."""
    overrides = dict(overrides or {})
    lines = [
        "# Written by tests/browser/%s" % os.path.basename(sys.argv[0]),
        "[proxy]",
        "listen = 127.0.0.1:%d" % port,
        "metrics_listen = 127.0.0.1:%d" % metrics_port,
        "admin_socket = %s" % os.path.join(work_dir, "run", "admin.sock"),
        "state_dir = %s" % os.path.join(work_dir, "state"),
        "trusted_proxies = 127.0.0.1",
        "allow_root = yes  # tests and CI run as root, in root's temp dirs",
        "",
        "[timeouts]",
        "client_header = 10s",
        "client_body_idle = 60s",
        "upstream_connect = 5s",
        "upstream_response = 60s",
        "queue = 30s",
        "",
        "[limits]",
        "max_body = 256m",
        "",
        "[routing]",
        "cookie_name = stickyproxy",
        "key_source = proxy_cookie",
        "",
        "[supervisor]",
        "restart_backoff_initial = 100ms",
        "stop_grace = 3s",
        "startup_timeout = 20s",
        "",
        "[health_check]",
        "path = /ping",
        "interval = 500ms",
        "timeout = 1s",
        "rise = 1",
        "fall = 3",
    ]
    for index in range(1, workers + 1):
        lines += [
            "",
            "[worker w%d]" % index,
            "address = unix:%s" % os.path.join(work_dir, "run", "w%d.sock" % index),
            "command = %s" % worker_binary,
            ("args = --name {name} --listen {address} --state-dir {state_dir} " + worker_args).rstrip(),
        ]
    lines = _apply_overrides(lines, overrides)
    path = os.path.join(work_dir, "proxy.conf")
    with open(path, "w") as config:
        config.write("\n".join(lines) + "\n")
    return path


def _apply_overrides(lines, overrides):
    """`lines` of a config with each "section.key" of `overrides` set (replaced or appended to its
    section, the section created at the end when missing)."""
    pending = dict(overrides)
    result = []
    section = None

    def flush_section():
        at = len(result)
        while at > 0 and not result[at - 1].strip():
            at -= 1  # before the blank lines that end the section
        for dotted in [name for name in pending if name.rsplit(".", 1)[0] == section]:
            result.insert(at, "%s = %s" % (dotted.rsplit(".", 1)[1], pending.pop(dotted)))
            at += 1

    for line in lines:
        if line.startswith("["):
            flush_section()
            section = line.strip("[]")
        elif section is not None and "=" in line:
            dotted = "%s.%s" % (section, line.split("=", 1)[0].strip())
            if dotted in pending:
                line = "%s = %s" % (dotted.rsplit(".", 1)[1], pending.pop(dotted))
        result.append(line)
    flush_section()
    added = None
    for dotted, value in pending.items():
        name, key = dotted.rsplit(".", 1)
        if name != added:
            result += ["", "[%s]" % name]
            added = name
        result.append("%s = %s" % (key, value))
    return result


def start_proxy(build_dir, work_dir, processes, deadline, worker_binary, workers=4, overrides=None, worker_args=""):
    """stickyproxy from `build_dir` with `workers` processes of `worker_binary` (write_proxy_config),
    on two free loopback ports, answering /ping; its output goes to <work_dir>/stickyproxy.log.
    Returns (port, metrics_port, config, process, log)."""
    port, metrics_port = free_port_pair()
    config = write_proxy_config(work_dir, os.path.join(build_dir, worker_binary), port, metrics_port, workers,
                                overrides=overrides, worker_args=worker_args)
    proxy, proxy_log = run_proxy(build_dir, work_dir, processes, deadline, config, port)
    return port, metrics_port, config, proxy, proxy_log


def free_port_pair():
    """Two different free loopback ports (free_tcp_port), for a proxy's listen and metrics_listen."""
    port = free_tcp_port()
    metrics_port = free_tcp_port()
    while metrics_port == port:
        metrics_port = free_tcp_port()
    return port, metrics_port


def run_proxy(build_dir, work_dir, processes, deadline, config, port, name="stickyproxy"):
    """stickyproxy from `build_dir` with `config`, waited for until it answers GET /ping on `port`;
    its output goes to <work_dir>/<name>.log (appended to, so a restart keeps the earlier lines).
    Makes <work_dir>/run and <work_dir>/state first. Returns (process, log path)."""
    for folder in ("run", "state"):
        os.makedirs(os.path.join(work_dir, folder), exist_ok=True)
    proxy_log = os.path.join(work_dir, name + ".log")
    proxy = processes.start(name, [os.path.join(build_dir, "stickyproxy"), "-c", config], proxy_log)
    wait_for_proxy(port, proxy, deadline, proxy_log)
    return proxy, proxy_log


def copy_shipped_config(source, work_dir, build_dir, port, metrics_port, overrides=None, name="proxy.conf"):
    """A copy of a shipped config (conf/prod.conf) that runs on loopback in `work_dir`: listen and
    metrics_listen on 127.0.0.1 `port` and `metrics_port`, admin_socket, state_dir and every
    worker's unix: socket in <work_dir>/run and <work_dir>/state, every worker command that names a
    build output taken from `build_dir`, no proxy.user and allow_root = yes (tests run as root).
    Everything else stays as shipped. `overrides` as in write_proxy_config ("worker w5.address"
    adds a worker section). Returns the copy's path."""
    with open(source) as shipped:
        lines = shipped.read().splitlines()
    rewritten = {
        "proxy.listen": "127.0.0.1:%d" % port,
        "proxy.metrics_listen": "127.0.0.1:%d" % metrics_port,
        "proxy.admin_socket": os.path.join(work_dir, "run", "admin.sock"),
        "proxy.state_dir": os.path.join(work_dir, "state"),
        "proxy.allow_root": "yes",  # tests and CI run as root, in root's temp dirs
    }
    section = None
    kept = []
    for line in lines:
        text = line.strip()
        if text.startswith("[") and text.endswith("]"):
            section = text.strip("[]").strip()
        elif section == "proxy" and text.split("=", 1)[0].strip() == "user":
            continue  # serve as the test's own user (root, with allow_root), not the shipped account
        elif section and section.startswith("worker ") and "=" in text and not text.startswith("#"):
            key, value = [part.strip() for part in text.split("=", 1)]
            worker = section.split(None, 1)[1]
            if key == "address" and value.startswith("unix:"):
                rewritten["%s.address" % section] = "unix:" + os.path.join(work_dir, "run", worker + ".sock")
            elif key == "command" and "/" in value:
                rewritten["%s.command" % section] = os.path.join(build_dir, os.path.basename(value.split("#")[0]
                                                                                             .strip()))
        kept.append(line)
    lines = kept
    rewritten.update(overrides or {})
    lines = ["# A copy of %s written by %s" % (source, os.path.basename(sys.argv[0]))] + lines
    path = os.path.join(work_dir, name)
    with open(path + ".tmp", "w") as config:
        config.write("\n".join(_apply_overrides(lines, rewritten)) + "\n")
    os.replace(path + ".tmp", path)  # a reload never reads half a file
    return path


def http_get(port, path, timeout, host="127.0.0.1"):
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_proxy(port, process, deadline, log_path):
    last_error = "no answer yet"
    while deadline.remaining() > 0:
        if process.poll() is not None:
            raise TestFailure("stickyproxy exited with status %s before answering /ping\n%s"
                              % (process.returncode, tail(log_path)))
        try:
            status, _ = http_get(port, "/ping", timeout=deadline.cap(2.0))
            if status == 200:
                return
            last_error = "GET /ping answered %d" % status
        except OSError as error:
            last_error = str(error)
        time.sleep(0.1)
    raise TestFailure("stickyproxy did not answer GET /ping in time (%s)\n%s" % (last_error, tail(log_path)))


def tail(path, lines=40):
    try:
        with open(path, "rb") as source:
            text = source.read().decode("utf-8", "replace")
    except OSError:
        return "(no log at %s)" % path
    # Headless Chromium in a container complains about the missing D-Bus at every start: noise.
    kept = [line for line in text.splitlines() if "dbus/" not in line]
    return "--- last lines of %s ---\n%s" % (path, "\n".join(kept[-lines:]))


class DevTools:
    """A DevTools protocol connection to Chromium over --remote-debugging-pipe.

    Chromium reads NUL-terminated JSON commands from its fd 3 and writes replies and events to
    its fd 4. A thread turns the reply stream into messages on a queue; the test thread sends
    commands and handles events while it waits for its replies. Flat sessions (flatten: true)
    put every target's traffic on this one pipe, tagged with sessionId.
    """

    def __init__(self, write_fd, read_fd):
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.next_id = 0
        self.messages = queue.Queue()
        self.replies = {}
        self.event_handlers = []
        self.closed = False
        self.reader = threading.Thread(target=self._read_loop, name="devtools-reader", daemon=True)
        self.reader.start()

    def _read_loop(self):
        buffer = b""
        while True:
            try:
                data = os.read(self.read_fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                self.messages.put(None)
                return
            buffer += data
            while True:
                end = buffer.find(b"\0")
                if end < 0:
                    break
                raw, buffer = buffer[:end], buffer[end + 1:]
                try:
                    self.messages.put(json.loads(raw.decode("utf-8")))
                except ValueError:
                    pass

    def send(self, method, params=None, session_id=None):
        """Sends a command without waiting for its reply; returns its id."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        data = json.dumps(message).encode("utf-8") + b"\0"
        try:
            while data:
                written = os.write(self.write_fd, data)
                data = data[written:]
        except OSError as error:
            raise TestFailure("Chromium closed its DevTools pipe (%s)" % error)
        return self.next_id

    def call(self, method, params=None, session_id=None, timeout=10.0):
        """Sends a command and returns its result; raises TestFailure on a protocol error."""
        command_id = self.send(method, params, session_id)
        end = time.monotonic() + timeout
        while command_id not in self.replies:
            left = end - time.monotonic()
            if left <= 0:
                raise TestFailure("no DevTools reply to %s within %.1f s" % (method, timeout))
            self._dispatch_one(left)
        reply = self.replies.pop(command_id)
        if "error" in reply:
            raise DevToolsError("%s: %s" % (method, reply["error"].get("message", reply["error"])))
        return reply.get("result", {})

    def pump(self, seconds):
        """Handles the events that arrive within `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self._dispatch_one(left)

    def _dispatch_one(self, timeout):
        if self.closed:
            raise TestFailure("Chromium closed its DevTools pipe")
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        if message is None:
            self.closed = True
            raise TestFailure("Chromium closed its DevTools pipe")
        if "id" in message:
            self.replies[message["id"]] = message
            return
        for handler in self.event_handlers:
            handler(message.get("method"), message.get("params", {}), message.get("sessionId"))


class DevToolsError(TestFailure):
    """A command the browser rejected (e.g. evaluating in a context a navigation destroyed)."""


def open_page(processes, chromium, work_dir, deadline):
    """Chromium started (start_chromium) with its page attached, errors recorded and the Page
    domain on. Returns (browser, devtools, recorder, page)."""
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
    return browser, devtools, recorder, Page(devtools, recorder, session_id, deadline)


def start_chromium(processes, chromium, work_dir):
    """Starts Chromium with the DevTools pipe on its fds 3 and 4; returns (process, DevTools)."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # The browser's ends are moved to fds >= 10 first, so that bash's "3<&N 4>&M" below can never
    # overwrite one of them with the other (dash takes only one-digit fds, bash any); pass_fds
    # keeps only these two open in the child.
    child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_browser_r)
    os.close(from_browser_w)
    profile = os.path.join(work_dir, "chromium-profile")
    os.makedirs(profile)
    flags = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-extensions",
        "--disable-component-update", "--disable-sync", "--mute-audio", "--password-store=basic",
        "--window-size=1366,900",
        "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank",
    ]
    shell = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (child_in, child_out, child_in, child_out)
    try:
        process = processes.start("chromium", ["/bin/bash", "-c", shell, "bash", chromium] + flags,
                                  os.path.join(work_dir, "chromium.log"), pass_fds=(child_in, child_out))
    finally:
        os.close(child_in)
        os.close(child_out)
    return process, DevTools(to_browser_w, from_browser_r)


class ErrorRecorder:
    """Collects JavaScript exceptions, console errors and browser log errors from every session
    (the page, and any frame or worker target attached to it)."""

    def __init__(self, devtools):
        self.devtools = devtools
        self.errors = []
        self.session_names = {}
        devtools.event_handlers.append(self.on_event)

    def watch(self, session_id, name):
        self.session_names[session_id] = name
        self.devtools.send("Runtime.enable", session_id=session_id)
        self.devtools.send("Log.enable", session_id=session_id)
        # Out-of-process frames (and workers) get their own sessions: attach to them on creation,
        # paused, so that nothing they log is missed.
        self.devtools.send("Target.setAutoAttach",
                           {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
                           session_id=session_id)

    def on_event(self, method, params, session_id):
        where = self.session_names.get(session_id, "browser")
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            text = exception.get("description") or details.get("text", "exception")
            self.errors.append("[%s] uncaught exception: %s (%s:%s)" % (
                where, text, details.get("url", "?"), details.get("lineNumber", "?")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            parts = []
            for arg in params.get("args", []):
                parts.append(str(arg.get("value", arg.get("description", arg.get("type")))))
            frames = params.get("stackTrace", {}).get("callFrames", [])
            origin = " (%s:%s)" % (frames[0].get("url"), frames[0].get("lineNumber")) if frames else ""
            self.errors.append("[%s] console.%s: %s%s" % (where, params.get("type"), " ".join(parts), origin))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.errors.append("[%s] %s error: %s %s" % (
                    where, entry.get("source", "log"), entry.get("text", ""), entry.get("url", "")))
        elif method == "Target.attachedToTarget":
            child = params.get("sessionId")
            info = params.get("targetInfo", {})
            self.watch(child, "%s %s" % (info.get("type", "target"), info.get("url", "")))
            self.devtools.send("Runtime.runIfWaitingForDebugger", session_id=child)

    def forgive(self, fragment):
        """Drops the recorded errors that contain `fragment` (ones a step provoked on purpose);
        returns how many there were."""
        kept = [error for error in self.errors if fragment not in error]
        dropped = len(self.errors) - len(kept)
        self.errors = kept
        return dropped

    def check(self, step):
        if self.errors:
            raise TestFailure("browser errors during %s:\n  %s" % (step, "\n  ".join(self.errors)))


class Page:
    """The UI page in one tab: evaluate JavaScript, wait for conditions, click, set file inputs."""

    def __init__(self, devtools, recorder, session_id, deadline):
        self.devtools = devtools
        self.recorder = recorder
        self.session_id = session_id
        self.deadline = deadline
        self.forgiven = 0  # expected browser errors forgiven by wait_for

    def evaluate(self, expression, timeout=10.0):
        result = self.devtools.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, session_id=self.session_id, timeout=self.deadline.cap(timeout) or 0.1)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise TestFailure("evaluating %r threw: %s" % (
                expression[:120], details.get("exception", {}).get("description", details.get("text"))))
        return result.get("result", {}).get("value")

    def wait_for(self, expression, what, timeout=30.0, watch_status=True, expected_error=None):
        """Polls `expression` until it is truthy and returns its value.

        Fails at once when the page shows an error in its status line (with that text) or when
        the browser reported an error (other than ones containing `expected_error`, which the
        step waited for may log before the page shows it), and after `timeout` (or the run's
        deadline) otherwise.
        """
        wrapped = "(() => { %s return { value: (%s) }; })()" % (
            "const s = document.getElementById('status-line');"
            " if (s && s.dataset.kind === 'error') return { pageError: s.textContent };" if watch_status else "",
            expression)
        end = time.monotonic() + self.deadline.cap(timeout)
        last = None
        while True:
            try:
                answer = self.evaluate(wrapped, timeout=5.0) or {}
            except DevToolsError as error:
                # A navigation in progress destroys the context the expression ran in: retry.
                answer = {"value": None, "retry": str(error)}
            if "pageError" in answer:
                raise TestFailure("waiting for %s, the page reported an error: %s" % (what, answer["pageError"]))
            last = answer.get("value")
            if last:
                return last
            if expected_error:
                self.forgiven += self.recorder.forgive(expected_error)
            self.recorder.check("the wait for " + what)
            if time.monotonic() >= end:
                raise TestFailure("timed out waiting for %s (last value %r; status line: %r)" % (
                    what, last, self.status_line()))
            self.devtools.pump(0.1)

    def status_line(self):
        try:
            return self.evaluate("document.getElementById('status-line') ?"
                                 " document.getElementById('status-line').textContent : null", timeout=2.0)
        except TestFailure:
            return None

    def navigate(self, url, ready="true", what="the page"):
        """Loads `url` and waits until it is loaded and the JavaScript expression `ready` holds."""
        # Marks the old document, so that the wait below cannot mistake it for the new one.
        self.evaluate("document.body && (document.body.dataset.state = 'leaving')")
        self.devtools.call("Page.navigate", {"url": url}, session_id=self.session_id,
                           timeout=self.deadline.cap(15.0))
        self.wait_for("location.href === %s && document.readyState === 'complete' && document.body &&"
                      " document.body.dataset.state !== 'leaving' && (%s)" % (json.dumps(url), ready),
                      "%s at %s to load" % (what, url), timeout=20.0, watch_status=False)

    def click(self, element_id, timeout=30.0):
        """Waits until the button is enabled, then clicks it."""
        self.wait_for("(() => { const e = document.getElementById(%s); return !!e && !e.disabled; })()"
                      % json.dumps(element_id), "#%s to be enabled" % element_id, timeout=timeout,
                      watch_status=False)
        self.evaluate("document.getElementById(%s).click()" % json.dumps(element_id))

    def set_files(self, element_id, paths):
        document = self.devtools.call("DOM.getDocument", {"depth": 0}, session_id=self.session_id)
        node = self.devtools.call("DOM.querySelector", {
            "nodeId": document["root"]["nodeId"], "selector": "#" + element_id}, session_id=self.session_id)
        if not node.get("nodeId"):
            raise TestFailure("the page has no #%s" % element_id)
        self.devtools.call("DOM.setFileInputFiles", {"files": paths, "nodeId": node["nodeId"]},
                           session_id=self.session_id)


def tear_down(processes, browser, devtools, work_dir, keep):
    """Closes Chromium over DevTools (so it exits cleanly), stops every process started by pid,
    reaps orphans, closes the pipe, and removes `work_dir` unless `keep`."""
    if devtools is not None and not devtools.closed:
        try:
            devtools.send("Browser.close")
            browser.wait(timeout=5.0)
        except (TestFailure, subprocess.TimeoutExpired):
            pass  # stop_all() below signals it
    processes.stop_all()
    reap_orphans()
    if devtools is not None:
        for fd in (devtools.write_fd, devtools.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
    if keep:
        log("kept %s" % work_dir)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)


def save_screenshot(page, path):
    try:
        shot = page.devtools.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                  session_id=page.session_id, timeout=10.0)
        with open(path, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        log("screenshot: %s" % path)
    except (TestFailure, OSError) as error:
        log("no screenshot: %s" % error)


def find_chromium(explicit):
    if explicit:
        return explicit
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None

