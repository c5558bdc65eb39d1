#!/usr/bin/env python3
"""stickyproxy-load against the real thing: the proxy with four bundled app workers on loopback.

    python3 tests/load/load_generator_test.py --build-dir build

A plain run (6 users, every 5th uploading a zip over 5 MiB in chunks) must complete flows of the
whole app with no session error, no failed upload and no other failure, name the proxy and its four
workers in its process figures, cost less CPU than the proxy and the workers together, and write a
JSON file and an SVG chart that parse. A short --find-capacity (2, 4, 6 users) must hold every step
and report 6. Bounded (180 s), loopback only; every process is stopped by its pid.
"""

import argparse
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import TestFailure, begin_run, log, start_proxy, tail, tear_down  # noqa: E402

WORKERS = ["w1", "w2", "w3", "w4"]


def gendata(build_dir, out, seed, wards, detail):
    os.makedirs(out)
    subprocess.run([os.path.join(build_dir, "stickyproxy-gendata"), "--seed", str(seed), "--wards", str(wards),
                    "--detail", str(detail), "--out", out], check=True, capture_output=True, timeout=60)
    return out


def load(build_dir, port, data, args, timeout):
    argv = [os.path.join(build_dir, "stickyproxy-load"), "--target", "127.0.0.1:%d" % port] + data + args
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    print(done.stdout)
    if done.returncode not in (0, 1) or done.stderr.strip():
        raise TestFailure("stickyproxy-load exited %d: %s" % (done.returncode, done.stderr.strip()))
    return done


def check(holds, message):
    if not holds:
        raise TestFailure(message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    deadline, work_dir, processes = begin_run(180, "sp-load-generator-")
    proxy_log = None
    try:
        small = gendata(build_dir, os.path.join(work_dir, "small"), 7, 60, 8)
        big = gendata(build_dir, os.path.join(work_dir, "big"), 8, 500, 256)
        port, _, _, _, proxy_log = start_proxy(build_dir, work_dir, processes, deadline, "stickyproxy-backend",
                                               len(WORKERS), worker_args="--session-idle-timeout-s 86400")
        data = ["--data", small, "--chunked-data", big, "--think-min", "0.05", "--think-max", "0.2"]

        report = os.path.join(work_dir, "run.json")
        chart = os.path.join(work_dir, "run.svg")
        log("a plain run: 6 users for 15 s")
        load(build_dir, port, data, ["--users", "6", "--duration", "15", "--ramp", "2", "--json", report,
                                     "--svg", chart], deadline.cap(90))
        with open(report) as source:
            figures = json.load(source)
        totals = figures["totals"]
        for key in ("session_errors", "upload_failures", "wrong_answers", "no_answers", "failed_uploads"):
            check(totals[key] == 0, "%s: %r, expected none" % (key, totals[key]))
        check(totals["flows_completed"] >= 3, "only %r flows completed" % totals["flows_completed"])
        check(totals["uploads_chunked"] >= 1, "no chunked upload was made")
        names = [process["name"] for process in figures["processes"]]
        check(names[0] == "proxy" and sorted(names[1:5]) == WORKERS and names[-1] == "stickyproxy-load",
              "process figures for %r, expected the proxy, %s and the generator" % (names, WORKERS))
        stack = sum(process["cpu_s"] for process in figures["processes"][:5])
        own = figures["processes"][-1]["cpu_s"]
        check(own < stack, "the generator used %.2f CPU s, the proxy and workers %.2f" % (own, stack))
        check(len(figures["timeline"]) >= 10, "a timeline of %d seconds" % len(figures["timeline"]))
        criteria = {item["goal"]: item["passed"] for item in figures["criteria"]}
        check(criteria.get("no session errors") and criteria.get("no upload failures"), "criteria: %r" % criteria)
        svg = ElementTree.parse(chart).getroot()
        lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
        check(len(lines) == 4, "the chart has %d lines, expected 4" % len(lines))

        log("--find-capacity: 2, 4 and 6 users, 6 s each")
        capacity = os.path.join(work_dir, "capacity.json")
        load(build_dir, port, data, ["--users", "2", "--find-capacity", "--step-users", "2", "--step-seconds", "6",
                                     "--ramp", "1", "--max-users", "6", "--json", capacity], deadline.cap(90))
        with open(capacity) as source:
            figures = json.load(source)
        levels = [(level["users"], level["held"]) for level in figures["levels"]]
        check(levels == [(2, True), (4, True), (6, True)], "capacity steps %r" % levels)
        check(figures["capacity_users"] == 6, "capacity %r, expected 6" % figures["capacity_users"])
        log("PASS")
        return 0
    except (TestFailure, OSError, ValueError, KeyError, subprocess.SubprocessError) as failure:
        log("FAIL: %s" % failure)
        if proxy_log:
            print(tail(proxy_log, 30), file=sys.stderr)
        return 1
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)


if __name__ == "__main__":
    sys.exit(main())
