#!/usr/bin/env python3
"""Three proxy instances behind a round-robin front, one secret, the same four workers: a session
reaches one worker whichever instance its requests go through, through a worker kill, the
worker's return and an instance restart.

    python3 tests/load/shared_instances.py --build-dir build [--instances 3] [--users 12] [--keep-temp]
        [--timeout 150]

The ctest test `load: three instances behind a round-robin front share sessions`. Instance A
supervises four build/stickyproxy-backend workers on Unix sockets (browser_support.write_proxy_config);
instances B, C, ... have the same config except their listen, metrics, admin and state paths, and the
same four workers as external workers (address only, no command). All read one routing secret file
(routing.secret_file, written here), so a cookie one signs the others accept. No other state is
shared.

In front of them a round-robin TCP front (here, in Python, as an ALB without stickiness) gives each
new connection to the next instance, skipping one that refuses it. Each user keeps one cookie jar
(the routing cookie and the app's session cookie) and sends every request on a new connection
through the front, so its requests land on every instance in turn. A user first uploads a small
data set (POST /upload_both_files), then each phase is a round of ROUND_REQUESTS GET
/session_status per user:

  start         every user's requests reach one worker (X-Worker), through every instance
  kill          the worker with the most users gets kill -9 (its pid from A's /status.json): its
                users move to one other worker, every instance agrees on it, and the app still has
                each moved session's data (it adopted the files, so the move was announced with
                X-Sticky-Previous-Worker); nobody else moves
  return        once every instance sees the killed worker ready again: moved users stay where they
                moved, the others where they were
  restart B     SIGTERM to instance B, wait for it to exit, start it again on the same ports: nothing
                moves

Every answer must be 200, carry X-Worker, and show the user's session with its data loaded
(session_id, csv_loaded, shapefile_loaded); the routing key inside the cookie never changes; every
instance must have answered in each phase. Prints a table per phase and PASS or FAIL; exit 0 on
PASS, 1 on FAIL, 2 when a binary is missing. Loopback only, kernel-chosen ports, every process
stopped by its pid. Python standard library only.
"""

import argparse
import collections
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))
sys.path.insert(0, HERE)

from browser_support import (TestFailure, begin_run, free_port_pair, http_get, log, routing_key,  # noqa: E402
                             run_proxy, tail, tear_down, write_proxy_config, write_routing_secret)
from app_flow import (PROXY_COOKIE, Dataset, LogFigures, UsageError, missing_binaries, print_table,  # noqa: E402
                      read_log_lines, set_cookies, verdict)

WORKERS = ["w1", "w2", "w3", "w4"]
WORKER_ARGS = "--session-idle-timeout-s 86400"
ROUND_REQUESTS = 6  # per user and phase, round-robin over the instances
WARDS = 40
RESTART_DELAY = "8s"  # instance A's restart_backoff_initial


class Instance:
    """One stickyproxy: its config, ports, process and log."""

    def __init__(self, name, work_dir):
        self.name = name
        self.work_dir = work_dir
        self.port = self.metrics_port = self.config = self.process = self.log = None

    def status(self):
        status, body = http_get(self.metrics_port, "/status.json", timeout=10.0)
        if status != 200:
            raise TestFailure("instance %s: GET /status.json answered %d" % (self.name, status))
        return {worker["name"]: worker for worker in json.loads(body.decode("utf-8"))["workers"]}


def external_copy(config_a, instance_b):
    """Instance A's config with `instance_b`'s listen, metrics, admin and state, and every worker
    external (its address kept, its command and args left out)."""
    with open(config_a) as source:
        lines = source.read().splitlines()
    replaced = {
        "listen": "127.0.0.1:%d" % instance_b.port,
        "metrics_listen": "127.0.0.1:%d" % instance_b.metrics_port,
        "admin_socket": os.path.join(instance_b.work_dir, "run", "admin.sock"),
        "state_dir": os.path.join(instance_b.work_dir, "state"),
    }
    result = ["# Instance %s: instance A's config with its own sockets and state, the workers external"
              % instance_b.name]
    section = None
    for line in lines:
        text = line.strip()
        if text.startswith("["):
            section = text.strip("[]")
        elif "=" in text and not text.startswith("#"):
            key = text.split("=", 1)[0].strip()
            if section == "proxy" and key in replaced:
                line = "%s = %s" % (key, replaced[key])
            elif section.startswith("worker ") and key in ("command", "args", "env"):
                continue
        result.append(line)
    path = os.path.join(instance_b.work_dir, "proxy.conf")
    with open(path, "w") as out:
        out.write("\n".join(result) + "\n")
    return path


class RoundRobinFront:
    """A TCP front on a kernel-chosen loopback port that gives each new connection to the next
    instance (skipping one that refuses the connection), and remembers which instance got the
    connection from each client port. One thread per connection direction; stop() ends them."""

    def __init__(self, instances):
        self.instances = instances
        self.turn = 0
        self.lock = threading.Lock()
        self.served = {}  # client port -> instance name
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, name="front", daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                client, address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client, address[1]), daemon=True).start()

    def serve(self, client, client_port):
        upstream = None
        with self.lock:
            first = self.turn
            self.turn = (self.turn + 1) % len(self.instances)
        for step in range(len(self.instances)):
            instance = self.instances[(first + step) % len(self.instances)]
            try:
                upstream = socket.create_connection(("127.0.0.1", instance.port), timeout=5.0)
                upstream.settimeout(None)
                with self.lock:
                    self.served[client_port] = instance.name
                break
            except OSError:
                upstream = None
        if upstream is None:
            client.close()
            return
        threading.Thread(target=self.pipe, args=(upstream, client), daemon=True).start()
        self.pipe(client, upstream)

    @staticmethod
    def pipe(source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            try:
                source.close()
            except OSError:
                pass

    def instance_for(self, client_port):
        with self.lock:
            return self.served.pop(client_port, "?")

    def stop(self):
        self.stopping = True
        self.listener.close()


class Person:
    """One user: a cookie jar for every instance and the worker its session is on."""

    def __init__(self, number, front):
        self.name = "user-%02d" % number
        self.front = front
        self.cookies = {}
        self.key = None
        self.sid = None
        self.worker = None

    def request(self, method, path, body=None, content_type=None):
        """One request on a new connection through the front: (instance name, status, X-Worker,
        JSON or None)."""
        headers = {"Accept": "application/json", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % item for item in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", self.front.port, timeout=30.0)
        where = "?"
        try:
            connection.connect()
            client_port = connection.sock.getsockname()[1]
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            where = self.front.instance_for(client_port)
        except (OSError, http.client.HTTPException) as error:
            raise TestFailure("%s: %s %s through the front: no answer (%s)" % (self.name, method, path, error))
        finally:
            connection.close()
        for name, morsel in set_cookies(response):
            if name == PROXY_COOKIE:
                key = routing_key(morsel.value)
                if self.key is not None and key != self.key:
                    raise TestFailure("%s: instance %s replaced the routing key %s with %s (a new session)"
                                      % (self.name, where, self.key, key))
                self.key = key
            self.cookies[name] = morsel.value
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError:
            document = None
        return where, response.status, response.getheader("X-Worker"), document


class SharedRun:
    def __init__(self, args, build_dir, work_dir, processes, deadline):
        self.args = args
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.deadline = deadline
        self.instances = [Instance(name, os.path.join(work_dir, name.lower())) for name in "ABCDE"[:args.instances]]
        self.a, self.b = self.instances[0], self.instances[1]
        self.front = None
        self.checks = []

    def start(self):
        secret_path = os.path.join(self.work_dir, "routing-secret")
        write_routing_secret(secret_path, "shared_instances %d" % self.args.seed)
        for instance in self.instances:
            os.makedirs(instance.work_dir)
            instance.port, instance.metrics_port = free_port_pair()
        self.a.config = write_proxy_config(self.a.work_dir, os.path.join(self.build_dir, "stickyproxy-backend"),
                                           self.a.port, self.a.metrics_port, len(WORKERS),
                                           overrides={"routing.secret_file": secret_path,
                                                      # the killed worker stays down while its users move
                                                      "supervisor.restart_backoff_initial": RESTART_DELAY},
                                           worker_args=WORKER_ARGS)
        for instance in self.instances[1:]:
            instance.config = external_copy(self.a.config, instance)
        for instance in self.instances:
            self.launch(instance)
        self.front = RoundRobinFront(self.instances)
        log("round-robin front on 127.0.0.1:%d over %s" % (self.front.port,
                                                           ", ".join(i.name for i in self.instances)))

    def launch(self, instance):
        instance.process, instance.log = run_proxy(self.build_dir, instance.work_dir, self.processes, self.deadline,
                                                   instance.config, instance.port, name="stickyproxy-" + instance.name)
        log("instance %s on 127.0.0.1:%d (pid %d), metrics on :%d" % (instance.name, instance.port,
                                                                      instance.process.pid, instance.metrics_port))

    def wait_ready(self, worker, what):
        """Until every instance shows `worker` ready (and so routes to it again)."""
        last = {}
        while self.deadline.remaining() > 5.0:
            last = {instance.name: instance.status().get(worker, {}).get("state") for instance in self.instances}
            if all(state == "ready" for state in last.values()):
                return
            self.deadline_sleep(0.2)
        raise TestFailure("%s: %s not ready on every instance (%s)" % (what, worker, last))

    def wait_down(self, worker):
        """Until no instance routes to `worker` (A sees its exit at once, the others after their
        health checks fail), so that all have moved its sessions before their next request."""
        last = {}
        while self.deadline.remaining() > 5.0:
            last = {instance.name: instance.status().get(worker, {}).get("state") for instance in self.instances}
            if all(state != "ready" for state in last.values()):
                return last
            self.deadline_sleep(0.1)
        raise TestFailure("%s still ready on an instance after its kill (%s)" % (worker, last))

    def deadline_sleep(self, seconds):
        # A poll interval inside a wait bounded by the run's deadline.
        time.sleep(min(seconds, self.deadline.remaining()))

    def check(self, name, figure, holds):
        self.checks.append([name, figure, holds])
        return holds

    def go(self):
        data = Dataset(self.build_dir, os.path.join(self.work_dir, "data"), self.args.seed, WARDS, None,
                       self.deadline.cap(60.0))
        self.start()
        people = [Person(number, self.front) for number in range(self.args.users)]
        for person in people:
            where, status, worker, document = person.request("POST", "/upload_both_files", data.whole_body,
                                                             data.whole_type)
            if status != 200 or not isinstance(document, dict) or document.get("status") != "success":
                raise TestFailure("%s: the upload through %s answered %d: %r" % (person.name, where, status, document))
            person.sid = document.get("session_id")
            person.worker = worker
        self.round(people, "start", moved_from=None)

        by_worker = collections.Counter(person.worker for person in people)
        victim = by_worker.most_common(1)[0][0]
        pid = int(self.a.status()[victim]["pid"])
        os.kill(pid, signal.SIGKILL)
        log("kill -9 %s (pid %d), the worker of %d users" % (victim, pid, by_worker[victim]))
        moved_users = [person.name for person in people if person.worker == victim]
        states = self.wait_down(victim)
        log("%s is down on every instance (%s)" % (victim, ", ".join("%s: %s" % item for item in states.items())))
        self.round(people, "after kill -9 %s" % victim, moved_from=victim)
        self.check("the killed worker's users moved", "%d users left %s" % (len(moved_users), victim),
                   all(person.worker != victim for person in people))

        self.wait_ready(victim, "the killed worker's return")
        self.round(people, "%s back" % victim, moved_from=None)

        log("restarting instance B (SIGTERM to pid %d)" % self.b.process.pid)
        self.b.process.send_signal(signal.SIGTERM)
        try:
            self.b.process.wait(timeout=self.deadline.cap(30.0))
        except Exception:
            raise TestFailure("instance B did not exit within 30 s of SIGTERM")
        self.launch(self.b)
        self.wait_ready(victim, "instance B's start")
        self.round(people, "instance B restarted", moved_from=None)

        # Every access log merged in time order: a session's requests go round the instances.
        figures = LogFigures(read_log_lines(*[instance.log for instance in self.instances]))
        self.check("every move announced (prev= in every instance's access log)",
                   "%d of %d moves (%d unannounced, %d with a wrong prev=)" % (
                       figures.announced, figures.moves, len(figures.unannounced), len(figures.wrong_prev)),
                   figures.moves >= len(moved_users) and not figures.unannounced and not figures.wrong_prev)
        for line in (figures.unannounced + figures.wrong_prev)[:8]:
            print("    " + line)
        adopted = figures.adopted[victim]
        self.check("the app adopted every moved session", "%d adoptions from %s for %d moved users"
                   % (adopted, victim, len(moved_users)), adopted >= len(moved_users))
        print_table("verdict", ["check", "figure", "verdict"],
                    [[name, figure, verdict(holds)] for name, figure, holds in self.checks], align="lll")
        return all(holds for _, _, holds in self.checks)

    def round(self, people, phase, moved_from):
        """ROUND_REQUESTS GET /session_status per user through the front; checks and prints."""
        rows, problems = [], []
        answered_by = collections.Counter()
        for person in people:
            seen = []
            for _ in range(ROUND_REQUESTS):
                where, status, worker, document = person.request("GET", "/session_status")
                seen.append("%s:%s" % (where, worker))
                answered_by[where] += 1
                state = {key: (document or {}).get(key) for key in ("session_id", "csv_loaded", "shapefile_loaded")}
                if status != 200 or not worker:
                    problems.append("%s: through %s answered %d, X-Worker %r" % (person.name, where, status, worker))
                elif state != {"session_id": person.sid, "csv_loaded": True, "shapefile_loaded": True}:
                    problems.append("%s: through %s, worker %s has the session as %r (expected %s with its data)"
                                    % (person.name, where, worker, state, person.sid))
            workers = sorted(set(entry.split(":", 1)[1] for entry in seen))
            expected_move = moved_from is not None and person.worker == moved_from
            if len(workers) != 1:
                problems.append("%s: its requests reached %s (%s)" % (person.name, ", ".join(workers), " ".join(seen)))
            elif not expected_move and workers[0] != person.worker:
                problems.append("%s: moved from %s to %s with no reason" % (person.name, person.worker, workers[0]))
            rows.append([person.name, person.worker, ", ".join(workers), " ".join(seen)])
            if len(workers) == 1:
                person.worker = workers[0]
        print_table("phase: %s (%d GET /session_status per user, each on a new connection through the front)"
                    % (phase, ROUND_REQUESTS),
                    ["user", "worker before", "reached", "instance:worker per request"], rows, align="llll")
        for problem in problems[:20]:
            print("    " + problem)
        self.check("%s: every session on one worker through every instance" % phase,
                   "%d problems" % len(problems), not problems)
        self.check("%s: every instance answered" % phase, ", ".join(
            "%s %d" % (instance.name, answered_by[instance.name]) for instance in self.instances),
            all(answered_by[instance.name] > 0 for instance in self.instances))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy and stickyproxy-backend")
    parser.add_argument("--instances", type=int, default=3, help="proxy instances behind the front, 2..5 (default 3)")
    parser.add_argument("--users", type=int, default=12, help="users (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="gendata seed and the secret's label (default 7)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--timeout", type=float, default=150.0, help="bound on the whole run, seconds (default 150)")
    args = parser.parse_args()
    if args.users < 2:
        parser.error("--users must be at least 2")
    if not 2 <= args.instances <= 5:
        parser.error("--instances must be from 2 to 5")
    build_dir = os.path.abspath(args.build_dir)
    missing = missing_binaries(build_dir)
    if missing:
        print("shared_instances: missing: %s (build them first)" % ", ".join(missing), file=sys.stderr)
        return 2
    deadline, work_dir, processes = begin_run(args.timeout, "sp-shared-instances-")
    run = SharedRun(args, build_dir, work_dir, processes, deadline)
    try:
        passed = run.go()
        log("%s in %.1f s" % ("PASS" if passed else "FAIL", args.timeout - deadline.remaining()))
        return 0 if passed else 1
    except UsageError as problem:
        print("shared_instances: %s" % problem, file=sys.stderr)
        return 2
    except (TestFailure, OSError, http.client.HTTPException, ValueError) as failure:
        log("FAIL: %s" % failure)
        for instance in run.instances:
            if instance.log:
                print(tail(instance.log, 20), file=sys.stderr)
        return 1
    finally:
        if run.front is not None:
            run.front.stop()
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
