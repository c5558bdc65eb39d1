#!/usr/bin/env python3
"""Binary upgrades that go wrong leave the running proxy serving, its workers untouched.

    python3 tests/load/upgrade_faults.py --build-dir build [--keep-temp] [--timeout 120]

The ctest test `load: upgrades that fail leave the proxy serving`. The proxy runs with two bundled
app workers on Unix sockets; a user's session (its routing cookie and an uploaded data set) is
checked after each phase: the proxy answers, the session is on its worker with its data, the
workers keep their pids and nothing restarted.

  lying client      connects to the admin socket as the successor would, says "handover", takes
                    the sockets it is given (they must be the proxy's listening sockets) and
                    answers "taken 1", a pid that is not its own: refused, the proxy serves on
  vanishing client  says "handover" and closes the connection before "taken": the same
  silent client     says "handover", takes the sockets and says nothing more (a successor that
                    hangs): given up after the start-up timeout (2 s here) and 10 s, the same
  another user      (as root) a client running as nobody in the admin group (admin_group =
                    nogroup) may drive the admin socket but not take it over: "handover" is
                    refused, with no descriptor
  broken config     the config file does not parse: `stickyproxy upgrade` refuses (exit 1) before
                    the proxy hears of it
  cannot bind       the config's listen address is another process's: the new process cannot bind
                    it and exits before taking over; the command exits 1 saying so, and the proxy
                    serves on
  a good upgrade    the proxy runs with NOTIFY_SOCKET (a datagram socket of the test, as systemd's),
                    WATCHDOG_USEC and WATCHDOG_PID (its own pid, as systemd sets them): the old
                    process must send MAINPID=<successor> and never STOPPING=1, the successor
                    READY=1 and then its own WATCHDOG=1 pings (the sender of each message is read
                    from its socket credentials); then SIGKILL to the successor: the workers,
                    which followed it, stop with it instead of holding their sockets

Loopback only, kernel-chosen ports, every process stopped by its pid; exit 0 on PASS, 1 on FAIL,
2 when a binary is missing. Python standard library only.
"""

import argparse
import http.client
import json
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))

from browser_support import (TestFailure, begin_run, free_port_pair, http_get, log, tail, tear_down,  # noqa: E402
                             wait_for_proxy, write_proxy_config)
from app_flow import multipart  # noqa: E402
from upgrade_under_load import process_gone, reap, worker_pids  # noqa: E402

WORKERS = ["w1", "w2"]


class NotifySocket:
    """systemd's end of the notify protocol: every datagram with the pid that sent it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages = []  # (sender pid, text)
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        credentials = struct.calcsize("3i")
        while not self.stopping:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(credentials))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = 0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", value[:credentials])[0]
            with self.lock:
                self.messages.append((pid, data.decode("utf-8", "replace")))

    def sent(self, pid, text):
        """Indexes of the messages from `pid` holding the line `text`."""
        with self.lock:
            return [i for i, (sender, message) in enumerate(self.messages)
                    if sender == pid and text in message.split("\n")]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()
# Run as nobody: asks for the handover and prints how many descriptors came, and the answer.
OTHER_USER_HANDOVER = '''
import socket, sys
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.settimeout(10)
client.connect(sys.argv[1])
client.sendall(b"handover\\n")
data, fds, _, _ = socket.recv_fds(client, 256, 16)
print("fds=%d %s" % (len(fds), data.decode().strip()))
'''


def receive_handover(admin_path, pid_claim, close_early=False, silent_for=0.0):
    """Plays a successor: returns (the JSON it got, the socket names of the descriptors). With
    `silent_for` it then waits that long for the proxy to give up on it (and close)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(10)
    client.connect(admin_path)
    client.sendall(b"handover\n")
    data, fds, _, _ = socket.recv_fds(client, 64, 16)
    names = []
    for fd in fds:
        with socket.socket(fileno=fd) as handed:
            names.append(handed.getsockname())
    while b"\n" not in data:
        data += client.recv(64)
    length, rest = data.split(b"\n", 1)
    while len(rest) < int(length):
        rest += client.recv(65536)
    document = json.loads(rest.decode("utf-8"))
    if silent_for:
        client.settimeout(silent_for)
        started = time.monotonic()
        if client.recv(64) != b"":
            raise TestFailure("the proxy wrote to a successor that said nothing")
        log("silent client: the proxy gave up on it after %.1f s" % (time.monotonic() - started))
    elif not close_early:
        client.sendall(b"taken %d\n" % pid_claim)
        client.settimeout(10)
        answer = client.recv(64)  # the proxy closes without "released"
        if answer.startswith(b"released"):
            raise TestFailure("the proxy released its sockets to a client that lied about its pid")
    client.close()
    return document, names


class Session:
    """One user: its cookies and the worker its session lives on."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}
        self.worker = None

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            all_headers = dict(headers or {})
            if self.cookies:
                all_headers["Cookie"] = "; ".join("%s=%s" % item for item in self.cookies.items())
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, rest = value.split("=", 1)
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, response.getheader("X-Worker"), payload
        finally:
            connection.close()

    def check(self, phase):
        status, worker, body = self.request("GET", "/session_status")
        if status != 200:
            raise TestFailure("%s: GET /session_status answered %d" % (phase, status))
        state = json.loads(body.decode("utf-8"))
        if self.worker is None:
            self.worker = worker
        if worker != self.worker:
            raise TestFailure("%s: the session moved from %s to %s" % (phase, self.worker, worker))
        if not state.get("csv_loaded"):
            raise TestFailure("%s: the session lost its data: %r" % (phase, state))


def upload(session, data_dir):
    boundary = "----stickyproxy-upgrade-faults"
    files = []
    for field, name, content_type in (("csv_file", "wards.csv", "text/csv"),
                                      ("shapefile", "wards_shapefile.zip", "application/zip")):
        with open(os.path.join(data_dir, name), "rb") as source:
            files.append((field, name, content_type, source.read()))
    status, _, answer = session.request("POST", "/upload_both_files", multipart(boundary, [], files),
                                        {"Content-Type": "multipart/form-data; boundary=" + boundary})
    if status != 200:
        raise TestFailure("the upload answered %d: %s" % (status, answer[:200]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--keep-temp", action="store_true")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    for name in ("stickyproxy", "stickyproxy-backend", "stickyproxy-gendata"):
        if not os.access(os.path.join(build_dir, name), os.X_OK):
            print("missing: %s" % name)
            return 2
    deadline, work_dir, processes = begin_run(args.timeout, "sp-upgrade-faults-")
    proxy_log = None
    notify = None
    extra_pids = []
    try:
        data = os.path.join(work_dir, "data")
        os.makedirs(data)
        subprocess.run([os.path.join(build_dir, "stickyproxy-gendata"), "--wards", "30", "--detail", "8", "--out",
                        data], check=True, capture_output=True, timeout=60)
        port, metrics_port = free_port_pair()
        # The admin group lets the "another user" phase reach the socket.
        config = write_proxy_config(work_dir, os.path.join(build_dir, "stickyproxy-backend"), port, metrics_port,
                                    workers=len(WORKERS), worker_args="--session-idle-timeout-s 86400",
                                    overrides={"proxy.admin_group": "nogroup", "supervisor.startup_timeout": "2s"})
        admin_path = os.path.join(work_dir, "run", "admin.sock")
        for folder in ("run", "state"):
            os.makedirs(os.path.join(work_dir, folder), exist_ok=True)
        notify = NotifySocket(os.path.join(work_dir, "notify.sock"))
        proxy_log = os.path.join(work_dir, "stickyproxy.log")
        # As systemd starts a Type=notify unit with WatchdogSec: the watchdog names the main pid.
        proxy = processes.start(
            "stickyproxy", ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" -c "$1"',
                            os.path.join(build_dir, "stickyproxy"), config], proxy_log,
            env=dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000"))
        wait_for_proxy(port, proxy, deadline, proxy_log)
        while any(state != "ready" for _, _, state in worker_pids(metrics_port).values()):
            if deadline.remaining() <= 0:
                raise TestFailure("the workers did not get ready")
            time.sleep(0.1)
        first = worker_pids(metrics_port)
        user = Session(port)
        upload(user, data)
        user.check("start")

        def still_serving(phase):
            if proxy.poll() is not None:
                raise TestFailure("%s: the proxy exited (%s)" % (phase, proxy.returncode))
            user.check(phase)
            if worker_pids(metrics_port) != first:
                raise TestFailure("%s: the workers changed: %r -> %r" % (phase, first, worker_pids(metrics_port)))
            status, _ = http_get(port, "/ping", timeout=10)
            if status != 200:
                raise TestFailure("%s: GET /ping answered %d" % (phase, status))
            log("%s: the proxy serves on, the session and the workers as they were" % phase)

        document, names = receive_handover(admin_path, pid_claim=1)
        roles = sorted(entry["role"] for entry in document["sockets"])
        if roles != ["admin", "listen", "metrics"] or ("127.0.0.1", port) not in names:
            raise TestFailure("the handover gave %r with sockets %r" % (roles, names))
        if sorted(worker["name"] for worker in document["workers"]) != WORKERS:
            raise TestFailure("the handover named workers %r" % document["workers"])
        still_serving("lying client")

        receive_handover(admin_path, pid_claim=0, close_early=True)
        still_serving("vanishing client")

        receive_handover(admin_path, pid_claim=0, silent_for=30.0)
        still_serving("silent client")

        if os.geteuid() == 0 and os.access("/usr/bin/python3", os.X_OK):
            for folder in (work_dir, os.path.dirname(admin_path)):
                os.chmod(folder, 0o711)  # nobody may pass through to the socket, and read nothing
            answer = subprocess.run(["/usr/bin/python3", "-c", OTHER_USER_HANDOVER, admin_path], capture_output=True,
                                    text=True, timeout=deadline.cap(30), user="nobody", group="nogroup",
                                    extra_groups=[])
            if answer.stdout.strip() != "fds=0 error: uid %d may not take over this proxy" % pwd.getpwnam("nobody").pw_uid:
                raise TestFailure("a handover asked by nobody: %r %r" % (answer.stdout, answer.stderr))
            still_serving("another user")

        with open(config) as source:
            good = source.read()

        def upgrade_with(text):
            with open(config + ".tmp", "w") as changed:
                changed.write(text)
            os.replace(config + ".tmp", config)
            done = subprocess.run([os.path.join(build_dir, "stickyproxy"), "upgrade", "-c", config],
                                  capture_output=True, text=True, timeout=deadline.cap(60))
            with open(config + ".tmp", "w") as restored:
                restored.write(good)
            os.replace(config + ".tmp", config)
            return done.returncode, (done.stdout + done.stderr).strip()

        # A config that does not parse: the command refuses before the proxy hears of it.
        code, answer = upgrade_with(good + "\n[worker w9]\naddress = nowhere\n")
        if code != 1 or "not a valid address" not in answer:
            raise TestFailure("an upgrade to a broken config: exit %d, %s" % (code, answer))
        still_serving("broken config")
        # A config whose new listen address is taken: the new process fails to bind and exits.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen(1)
            taken = squatter.getsockname()[1]
            code, answer = upgrade_with(good.replace("listen = 127.0.0.1:%d\n" % port,
                                                     "listen = 127.0.0.1:%d\n" % taken))
        if code != 1 or "before taking over" not in answer or "keeps serving" not in answer:
            raise TestFailure("an upgrade whose new process cannot bind: exit %d, %s" % (code, answer))
        still_serving("new process cannot bind")

        done = subprocess.run([os.path.join(build_dir, "stickyproxy"), "upgrade", "-c", config], capture_output=True,
                              text=True, timeout=deadline.cap(60))
        match = re.match(r"upgraded: pid (\d+) serves now", done.stdout)
        if done.returncode != 0 or not match:
            raise TestFailure("the good upgrade: exit %d, %s" % (done.returncode, done.stdout + done.stderr))
        successor = int(match.group(1))
        extra_pids.append(successor)
        proxy.wait(timeout=deadline.cap(60))
        user.check("after the upgrade")
        handed = notify.sent(proxy.pid, "MAINPID=%d" % successor)
        if not handed:
            raise TestFailure("the old process told systemd no MAINPID=%d: %r" % (successor, notify.messages))
        if notify.sent(proxy.pid, "STOPPING=1"):
            raise TestFailure("the old process told systemd it was stopping")
        while not [i for i in notify.sent(successor, "WATCHDOG=1") if i > handed[0]]:
            if deadline.remaining() <= 0:
                raise TestFailure("no watchdog ping from the successor: %r" % notify.messages[-10:])
            time.sleep(0.1)
        if not [i for i in notify.sent(successor, "READY=1") if i > handed[0]]:
            raise TestFailure("the successor sent no READY=1 after MAINPID=: %r" % notify.messages[-10:])
        log("systemd heard MAINPID=%d from pid %d, then READY=1 and watchdog pings from the successor"
            % (successor, proxy.pid))
        os.kill(successor, signal.SIGKILL)
        pids = [pid for pid, _, _ in first.values()]
        while not all(process_gone(pid) for pid in pids):
            reap()
            if deadline.remaining() <= 0:
                raise TestFailure("workers still running after their new supervisor was killed: %r"
                                  % [pid for pid in pids if not process_gone(pid)])
            time.sleep(0.1)
        log("SIGKILL to the successor: its adopted workers stopped with it")
        print("PASS: a lying, a vanishing, a silent and a foreign successor, a broken config and a new process that cannot "
              "bind left the proxy serving; adopted workers end with their supervisor")
        return 0
    except (TestFailure, subprocess.SubprocessError, OSError, KeyError, ValueError) as error:
        print("FAIL: %s" % error)
        if proxy_log:
            print(tail(proxy_log, 40))
        return 1
    finally:
        if notify is not None:
            notify.close()
        for pid in extra_pids:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
