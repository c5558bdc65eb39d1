#!/usr/bin/env python3
"""Two proxy instances, one secret, the same four workers: a session reaches one worker whichever
instance its requests go through, through a worker kill, the worker's return and an instance restart.

    python3 tests/load/shared_instances.py --build-dir build [--users 12] [--keep-temp] [--timeout 150]

The ctest test `load: two instances share sessions`. Instance A supervises four
build/stickyproxy-backend workers on Unix sockets (browser_support.write_proxy_config); instance B
has the same config except its listen, metrics, admin and state paths, and the same four workers as
external workers (address only, no command). Both read one routing secret file (routing.secret_file,
written here), so a cookie one signs the other accepts.

Each user keeps one cookie jar (the routing cookie and the app's session cookie; both instances are
127.0.0.1, and cookies are not port-specific) and alternates its requests between A and B. A user
first uploads a small data set (POST /upload_both_files), then each phase is a round of
ROUND_REQUESTS GET /session_status per user, A, B, A, B...:

  start         every user's requests reach one worker (X-Worker), through both instances
  kill          the worker with the most users gets kill -9 (its pid from A's /status.json): its
                users move to one other worker, both instances agree on it, and the app still has
                each moved session's data (it adopted the files, so the move was announced with
                X-Sticky-Previous-Worker); nobody else moves
  return        once both instances see the killed worker ready again: moved users stay where they
                moved, the others where they were
  restart B     SIGTERM to instance B, wait for it to exit, start it again on the same ports: nothing
                moves

Every answer must be 200, carry X-Worker, and show the user's session with its data loaded
(session_id, csv_loaded, shapefile_loaded); the routing key inside the cookie never changes.
Prints a table per phase and PASS or FAIL; exit 0 on PASS, 1 on FAIL, 2 when a binary is missing.
Loopback only, kernel-chosen ports, every process stopped by its pid. Python standard library only.
"""

import argparse
import collections
import http.client
import json
import os
import signal
import sys
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
ROUND_REQUESTS = 6  # per user and phase: three through each instance
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
    """Instance A's config with B's listen, metrics, admin and state, and every worker external
    (its address kept, its command and args left out)."""
    with open(config_a) as source:
        lines = source.read().splitlines()
    replaced = {
        "listen": "127.0.0.1:%d" % instance_b.port,
        "metrics_listen": "127.0.0.1:%d" % instance_b.metrics_port,
        "admin_socket": os.path.join(instance_b.work_dir, "run", "admin.sock"),
        "state_dir": os.path.join(instance_b.work_dir, "state"),
    }
    result = ["# Instance B: instance A's config with its own sockets and state, the workers external"]
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


class Person:
    """One user: a cookie jar for both instances and the worker its session is on."""

    def __init__(self, number, instances):
        self.name = "user-%02d" % number
        self.instances = instances
        self.turn = number % 2  # users begin on alternate instances
        self.cookies = {}
        self.key = None
        self.sid = None
        self.worker = None

    def next_instance(self):
        instance = self.instances[self.turn]
        self.turn = 1 - self.turn
        return instance

    def request(self, method, path, body=None, content_type=None):
        """One request through the next instance: (instance name, status, X-Worker, JSON or None)."""
        instance = self.next_instance()
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % item for item in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=30.0)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise TestFailure("%s: %s %s through %s: no answer (%s)" % (self.name, method, path, instance.name, error))
        finally:
            connection.close()
        for name, morsel in set_cookies(response):
            if name == PROXY_COOKIE:
                key = routing_key(morsel.value)
                if self.key is not None and key != self.key:
                    raise TestFailure("%s: instance %s replaced the routing key %s with %s (a new session)"
                                      % (self.name, instance.name, self.key, key))
                self.key = key
            self.cookies[name] = morsel.value
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError:
            document = None
        return instance.name, response.status, response.getheader("X-Worker"), document


class SharedRun:
    def __init__(self, args, build_dir, work_dir, processes, deadline):
        self.args = args
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.deadline = deadline
        self.a = Instance("A", os.path.join(work_dir, "a"))
        self.b = Instance("B", os.path.join(work_dir, "b"))
        self.checks = []

    def start(self):
        secret_path = os.path.join(self.work_dir, "routing-secret")
        write_routing_secret(secret_path, "shared_instances %d" % self.args.seed)
        for instance in (self.a, self.b):
            os.makedirs(instance.work_dir)
            instance.port, instance.metrics_port = free_port_pair()
        self.a.config = write_proxy_config(self.a.work_dir, os.path.join(self.build_dir, "stickyproxy-backend"),
                                           self.a.port, self.a.metrics_port, len(WORKERS),
                                           overrides={"routing.secret_file": secret_path,
                                                      # the killed worker stays down while its users move
                                                      "supervisor.restart_backoff_initial": RESTART_DELAY},
                                           worker_args=WORKER_ARGS)
        self.b.config = external_copy(self.a.config, self.b)
        for instance in (self.a, self.b):
            self.launch(instance)

    def launch(self, instance):
        instance.process, instance.log = run_proxy(self.build_dir, instance.work_dir, self.processes, self.deadline,
                                                   instance.config, instance.port, name="stickyproxy-" + instance.name)
        log("instance %s on 127.0.0.1:%d (pid %d), metrics on :%d" % (instance.name, instance.port,
                                                                      instance.process.pid, instance.metrics_port))

    def wait_ready(self, worker, what):
        """Until both instances show `worker` ready (and so route to it again)."""
        last = {}
        while self.deadline.remaining() > 5.0:
            last = {instance.name: instance.status().get(worker, {}).get("state") for instance in (self.a, self.b)}
            if all(state == "ready" for state in last.values()):
                return
            self.deadline_sleep(0.2)
        raise TestFailure("%s: %s not ready on both instances (%s)" % (what, worker, last))

    def wait_down(self, worker):
        """Until neither instance routes to `worker` (A sees its exit at once, B after its health
        checks fail), so that both have moved its sessions before their next request."""
        last = {}
        while self.deadline.remaining() > 5.0:
            last = {instance.name: instance.status().get(worker, {}).get("state") for instance in (self.a, self.b)}
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
        people = [Person(number, [self.a, self.b]) for number in range(self.args.users)]
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
        log("%s is down on both instances (%s)" % (victim, ", ".join("%s: %s" % item for item in states.items())))
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

        # Both access logs merged in time order: a session's requests alternate between them.
        figures = LogFigures(read_log_lines(self.a.log, self.b.log))
        self.check("every move announced (prev= in the access logs of A and B)",
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
        """ROUND_REQUESTS GET /session_status per user, alternating instances; checks and prints."""
        rows, problems = [], []
        for person in people:
            seen = []
            for _ in range(ROUND_REQUESTS):
                where, status, worker, document = person.request("GET", "/session_status")
                seen.append("%s:%s" % (where, worker))
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
        print_table("phase: %s (%d GET /session_status per user, alternating A and B)" % (phase, ROUND_REQUESTS),
                    ["user", "worker before", "reached", "instance:worker per request"], rows, align="llll")
        for problem in problems[:20]:
            print("    " + problem)
        self.check("%s: every session on one worker through both instances" % phase,
                   "%d problems" % len(problems), not problems)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy and stickyproxy-backend")
    parser.add_argument("--users", type=int, default=12, help="users (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="gendata seed and the secret's label (default 7)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--timeout", type=float, default=150.0, help="bound on the whole run, seconds (default 150)")
    args = parser.parse_args()
    if args.users < 2:
        parser.error("--users must be at least 2")
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
        for instance in (run.a, run.b):
            if instance.log:
                print(tail(instance.log, 20), file=sys.stderr)
        return 1
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
