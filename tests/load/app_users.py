#!/usr/bin/env python3
"""The users' goal, measured: many people doing the whole analysis flow at once through the proxy.

    python3 tests/load/app_users.py --build-dir build [--users 50] [--duration 120] [--wards 300]
        [--seed 7] [--think-min 1] [--think-max 3] [--strict] [--keep-temp] [--timeout 600]

An on-demand benchmark, not part of ctest. The goal it checks: on one 2-vCPU host, four workers,
50 concurrent users, no Redis, response time under 3 s, no session errors ("file not found",
"please run an analysis first", missing chunks, vanishing download links), no failed uploads,
CPU under 80%.

Starts build/stickyproxy with a config written here (four build/stickyproxy-backend workers on
Unix sockets with --session-idle-timeout-s 86400, the proxy and its metrics listener on
kernel-chosen 127.0.0.1 ports, all in a temp dir), makes test data with build/stickyproxy-gendata
(--wards wards, seed --seed; and 500 wards at --detail 256, seed --seed + 1: a zip over 5 MB), then
runs --users simulated users, one thread each, started evenly over the first RAMP_SECONDS. A user
opens the page (GET /, GET /session_status), then repeats the whole flow until --duration has passed
since the first user started, with a random think time (seeded) between two clicks:

  upload            POST /upload_both_files (multipart csv_file + shapefile), or for every 5th user
                    the big data set through POST /upload/chunk in 2 MiB chunks (fields upload_id,
                    file_type, chunk_index, total_chunks, then the file part chunk) and
                    POST /upload/finalize, as the page does for files over 5 MB
  analysis          POST /run_analysis
  maps              POST /get_visualization {type: vulnerability_map} and GET its /serve_viz_file/;
                    POST /get_visualization {type: composite_map} and GET page 1; POST
                    /navigate_composite_map {direction: next} and GET page 2 (the page loads every
                    map it is given into its frame at once)
  chat              POST /send_message_streaming "which wards are highest risk", read to the end
  exports           GET /export/list/<sid>, then GET /export/download/<sid>/<file> for one result
  session           GET /session_status

Each user has its own connection (keep-alive) and its own cookies, both the proxy's routing
cookie and the app's chatmrpt_session, which the app rotates on every upload. A step counts as
failed the way a user would notice: not HTTP 200, a JSON answer without status "success", an
empty download, a missing map, an answer that does not fit (ward count, chat text, pages), or one
of SESSION_ERROR_TEXTS (the backend's own messages for a session it does not know or has lost),
which also counts as a session error, as do a session the app forgot (/session_status), an export
list without the results the user made, and a routing cookie the proxy replaced. After a failed
step the user starts the flow over, as a person would.

Prints: latency per route (count, p50, p95, p99, max, errors), totals, the spread over workers,
host CPU from /proc/stat (average and peak of 1 s samples) with the CPU seconds and peak RSS of the
proxy, each worker and this process (which runs on the same cores: its CPU is in the host figure),
and a verdict table for the goal. Exit 0 when there was no session error, no failed upload and
every request succeeded (and, with --strict, every verdict passed), 1 otherwise, 2 on a usage or
environment problem. Every process started here is stopped by its pid and the temp dir removed
unless --keep-temp (which keeps the proxy log, stickyproxy.log, with the workers' stderr in it).
Loopback only. Python standard library only.
"""

import argparse
import http.client
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import TestFailure, begin_run, log, tail, tear_down  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app_flow import (CHUNK_THRESHOLD, CHUNKED_EVERY, BIG_DETAIL, BIG_WARDS, SESSION_ERROR_TEXTS,  # noqa: E402
                      STREAM_END, UPLOAD_CHUNKED, UPLOAD_WHOLE, WORKERS, CpuSampler, Dataset, Recorder, Rig,
                      UsageError, User, cpu_text, figures, mib, missing_binaries, ms, own_cpu_seconds,
                      percentile, print_table, process_cpu_seconds, process_peak_rss, verdict, wrap)


RAMP_SECONDS = 10.0
GOAL_SECONDS = 3.0
GOAL_CPU_PERCENT = 80.0


# ---------------------------------------------------------------------------- main

def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the directory with stickyproxy, stickyproxy-backend and "
                                                           "stickyproxy-gendata")
    parser.add_argument("--users", type=int, default=50, help="simulated users at once (default 50)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds from the first user's start until users stop starting steps (default 120)")
    parser.add_argument("--wards", type=int, default=300, help="wards in the data the whole uploads send (default 300)")
    parser.add_argument("--seed", type=int, default=7, help="gendata seed and the users' random seed (default 7)")
    parser.add_argument("--think-min", type=float, default=1.0, help="shortest think time, seconds (default 1)")
    parser.add_argument("--think-max", type=float, default=3.0, help="longest think time, seconds (default 3)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 also when the latency or CPU verdict fails (default: reported only)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (config, proxy log, data)")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on the whole run, seconds (default 600)")
    args = parser.parse_args()
    if args.users < 1:
        parser.error("--users must be at least 1")
    if not 1 <= args.wards <= 20000:
        parser.error("--wards must be from 1 to 20000 (gendata's range)")
    if args.duration < 1:
        parser.error("--duration must be at least 1 second")
    if not 0 <= args.think_min <= args.think_max:
        parser.error("--think-min and --think-max must satisfy 0 <= min <= max")
    if args.timeout < args.duration + 60:
        parser.error("--timeout must leave at least 60 s beyond --duration for start-up and the last answers")
    return args


def main():
    args = parse_arguments()
    build_dir = os.path.abspath(args.build_dir)
    missing = missing_binaries(build_dir)
    if missing:
        print("app_users: missing: %s (build them first)" % ", ".join(missing), file=sys.stderr)
        return 2
    if not os.path.exists("/proc/stat"):
        print("app_users: needs Linux /proc for the CPU figures", file=sys.stderr)
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-app-users-")
    rig = Rig(build_dir, work_dir, processes)
    try:
        return run(args, build_dir, work_dir, rig, deadline)
    except UsageError as problem:
        print("app_users: %s" % problem, file=sys.stderr)
        return 2
    except (TestFailure, OSError, http.client.HTTPException, ValueError) as failure:
        log("FAIL: %s" % failure)
        print(tail(rig.proxy_log, 30), file=sys.stderr)
        return 1
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)


def run(args, build_dir, work_dir, rig, deadline):
    small = Dataset(build_dir, os.path.join(work_dir, "data-small"), args.seed, args.wards, None, deadline.cap(60.0))
    big = Dataset(build_dir, os.path.join(work_dir, "data-big"), args.seed + 1, BIG_WARDS, BIG_DETAIL,
                  deadline.cap(60.0))
    if len(big.zip) <= CHUNK_THRESHOLD:
        raise UsageError("gendata --detail %d made a %d byte zip: not over 5 MB, so the page would not chunk it"
                         % (BIG_DETAIL, len(big.zip)))
    data = {UPLOAD_WHOLE: small, UPLOAD_CHUNKED: big}
    rig.start(deadline)
    run = Run(args, rig, data)
    run.measure(deadline)
    run.print_latency()
    clean = run.print_totals()
    run.print_workers()
    run.print_cpu()
    passed = run.print_verdict(clean)
    run.print_proxy_log(clean)
    log("%s in %.1f s" % ("PASS" if passed else "FAIL", args.timeout - deadline.remaining()))
    return 0 if passed else 1


class Run:
    """The users against the started proxy, the figures taken around them, and their tables."""

    def __init__(self, args, rig, data):
        self.args = args
        self.rig = rig
        self.data = data
        self.cores = os.cpu_count() or 1
        self.ramp = min(RAMP_SECONDS, args.duration / 2.0)

    def measure(self, deadline):
        args = self.args
        self.before = self.rig.status()
        self.pids = {name: worker["pid"] for name, worker in self.before.items()}
        self.pids["proxy"] = self.rig.proxy.pid
        self.load_before = os.getloadavg()
        chunked = sum(1 for index in range(args.users) if (index + 1) % CHUNKED_EVERY == 0)
        log("%d users (%d upload in chunks) for %.0f s, ramp-up %.0f s, think %.1f-%.1f s; load average before: %.2f"
            % (args.users, chunked, args.duration, self.ramp, args.think_min, args.think_max, self.load_before[0]))

        cpu_start = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        own_start = own_cpu_seconds()
        self.sampler = CpuSampler()
        started = time.monotonic()
        self.recorder = Recorder(started)
        stop_at = started + args.duration
        # Requests still unanswered at hard_stop fail (timeout), leaving time to report and tear down.
        hard_stop = started + max(args.duration + 5.0, deadline.remaining() - 30.0)
        self.users = [User(index, args, self.rig.port, self.data, self.recorder,
                           started + self.ramp * index / args.users, stop_at, hard_stop)
                      for index in range(args.users)]
        self.sampler.start()
        for user in self.users:
            user.start()
        for user in self.users:
            user.join(timeout=max(0.0, hard_stop - time.monotonic() + 5.0))
        self.window = time.monotonic() - started
        self.sampler.stop()
        self.own_cpu = own_cpu_seconds() - own_start
        self.own_rss = process_peak_rss("self")
        self.cpu = {}
        for name, pid in self.pids.items():
            end = process_cpu_seconds(pid)
            self.cpu[name] = None if end is None or cpu_start[name] is None else end - cpu_start[name]
        self.peak_rss = {name: process_peak_rss(pid) for name, pid in self.pids.items()}
        self.load_after = os.getloadavg()
        self.stuck = [user.name for user in self.users if user.is_alive()]
        self.crashed = [user.crashed for user in self.users if user.crashed]
        self.after = self.rig.status()
        self.sessions = {entry["name"]: entry for entry in self.rig.ctl_json(["show", "sessions"]).get("workers", [])}
        self.access, self.server_errors, self.notes, self.other_lines = self.rig.log_summary()

    def host_share(self, seconds):
        return 100.0 * seconds / (self.window * self.cores)

    def print_latency(self):
        recorder = self.recorder
        rows = []
        self.everything = []
        for route in recorder.route_order:
            values = sorted(recorder.latencies[route])
            judged = not route.endswith(STREAM_END)
            if judged:
                self.everything += values
            rows.append([route + ("" if judged else " *"), len(values)] + figures(values)
                        + [recorder.route_errors[route] if judged else ""])
        self.everything.sort()
        rows.append(["all requests", len(self.everything)] + figures(self.everything)
                    + [sum(recorder.route_errors.values())])
        print_table("latency per route (%d users, %.0f s, think %.1f-%.1f s; from sending the request to the whole "
                    "answer)" % (self.args.users, self.args.duration, self.args.think_min, self.args.think_max),
                    ["route", "count", "p50", "p95", "p99", "max", "errors"], rows,
                    ["POST /send_message_streaming: until the first event, when the answer starts to appear;",
                     "* to its end: the whole stream, paced by the app (an event every 15 ms), not in the verdict."])

    def print_totals(self):
        """Prints the totals and the first failures; True when nothing failed."""
        recorder = self.recorder
        texts = ", ".join("%r x %d" % item for item in sorted(recorder.texts_seen.items())) or "none"
        chunk_requests = sum(len(pieces) for _, _, pieces in self.data[UPLOAD_CHUNKED].chunks())
        rows = [
            ["flows completed", "%d (%d with a whole upload, %d chunked); %d cut short when the run ended" % (
                sum(recorder.flows.values()), recorder.flows[UPLOAD_WHOLE], recorder.flows[UPLOAD_CHUNKED],
                recorder.flows_cut)],
            ["requests", "%d (proxy access log: %d lines, %d with status >= 500, %d answered by the proxy itself)" % (
                recorder.requests, self.access, len(self.server_errors), len(self.notes))],
            ["session errors", "%d (texts seen: %s)" % (recorder.session_errors, texts)],
            ["failed uploads, whole", "%d of %d" % (recorder.failed_uploads[UPLOAD_WHOLE],
                                                    recorder.uploads[UPLOAD_WHOLE])],
            ["failed uploads, chunked", "%d of %d (each %d chunk requests and a finalize)" % (
                recorder.failed_uploads[UPLOAD_CHUNKED], recorder.uploads[UPLOAD_CHUNKED], chunk_requests)],
            ["other errors", "%d" % recorder.other_errors],
            ["worker changes", "%d (answers from another worker than the user's earlier ones)"
             % recorder.worker_changes],
        ]
        print_table("totals (measured window %.1f s, ramp-up %.0f s)" % (self.window, self.ramp), ["figure", "value"],
                    rows, ["an upload that fails with a session-error text counts in both rows; the texts looked "
                           "for (the backend's own):"] + wrap(", ".join(repr(text) for text, _ in SESSION_ERROR_TEXTS)),
                    align="ll")
        if recorder.samples:
            print("\n  first failures:")
            for sample in recorder.samples:
                print("    " + sample)
        if self.crashed:
            print("\n  users stopped by an error of this script:\n    " + "\n    ".join(self.crashed))
        if self.stuck:
            print("\n  users still waiting for an answer at the end: %s" % ", ".join(self.stuck))
        return (recorder.session_errors == 0 and sum(recorder.failed_uploads.values()) == 0
                and recorder.other_errors == 0 and recorder.worker_changes == 0 and not self.stuck
                and not self.crashed)

    def print_workers(self):
        rows = []
        for name in WORKERS:
            on_it = [user for user in self.users if user.worker == name]
            grew = {key: self.after[name][key] - self.before[name][key]
                    for key in ("requests", "errors_5xx", "restarts")}
            rows.append([name, len(on_it), sum(1 for user in on_it if user.path == UPLOAD_CHUNKED),
                         sum(user.flows_done for user in on_it), self.sessions.get(name, {}).get("active", "?"),
                         self.sessions.get(name, {}).get("moved", "?"), grew["requests"], grew["errors_5xx"],
                         grew["restarts"], cpu_text(self.cpu[name]), mib(self.peak_rss[name])])
        rows.append(["proxy"] + [""] * 8 + [cpu_text(self.cpu["proxy"]), mib(self.peak_rss["proxy"])])
        rows.append(["this load generator"] + [""] * 8 + [cpu_text(self.own_cpu), mib(self.own_rss)])
        spread = [row[1] for row in rows[:len(WORKERS)]]
        print_table("sessions per worker (users: by X-Worker; sessions: `stickyproxy ctl show sessions json` at the "
                    "end)",
                    ["worker", "users", "chunked", "flows", "sessions", "moved", "requests", "5xx", "restarts", "CPU s",
                     "peak RSS"], rows,
                    ["users per worker: min %d, max %d of %d (random keys: %.1f +- %.1f expected per worker); "
                     "sessions: the" % (min(spread), max(spread), self.args.users, self.args.users / 4.0,
                                        math.sqrt(self.args.users * 3.0 / 16.0)),
                     "proxy's live routing keys: the users' and the start-up probe's (GET /ping without a cookie)",
                     "requests, 5xx, restarts: /status.json over the window; CPU s: user+system seconds in the window "
                     "(/proc/<pid>/stat); peak RSS: VmHWM"])

    def print_cpu(self):
        stack = sum(self.cpu[name] or 0.0 for name in WORKERS + ["proxy"])
        self.host_average = self.sampler.average()
        self.host_peak = max(self.sampler.samples) if self.sampler.samples else float("nan")
        rows = [
            ["all CPUs busy, average", "%.1f%%" % self.host_average],
            ["all CPUs busy, peak 1 s sample", "%.1f%% (%d samples)" % (self.host_peak, len(self.sampler.samples))],
            ["proxy + 4 workers", "%.1f CPU s = %.1f%% of the host" % (stack, self.host_share(stack))],
            ["this load generator (Python)", "%.1f CPU s = %.1f%% of the host" % (self.own_cpu,
                                                                                 self.host_share(self.own_cpu))],
            ["everything else on the host", "%.1f%% of the host" % max(
                0.0, self.host_average - self.host_share(stack + self.own_cpu))],
            ["load average (1 min) before / after", "%.2f / %.2f" % (self.load_before[0], self.load_after[0])],
        ]
        print_table("host CPU over the measured window (%.1f s, %d CPUs; /proc/stat, 1 s samples)"
                    % (self.window, self.cores), ["figure", "value"], rows,
                    ["This load generator runs on the same cores: its CPU is inside the host figure. Subtract it",
                     "(and anything else that ran meanwhile) for what the proxy and the app take."], align="ll")

    def print_verdict(self, clean):
        """Prints the goal's verdicts; True when the run passes (with --strict: every verdict)."""
        recorder = self.recorder
        p99 = percentile(self.everything, 0.99)
        worst = self.everything[-1] if self.everything else float("nan")
        failed_uploads = sum(recorder.failed_uploads.values())
        judged = [p99 < GOAL_SECONDS, worst < GOAL_SECONDS, self.host_average < GOAL_CPU_PERCENT]
        rows = [
            ["response time p99 < 3 s", ms(p99), verdict(judged[0])],
            ["response time max < 3 s", ms(worst), verdict(judged[1])],
            ["session errors = 0", str(recorder.session_errors), verdict(recorder.session_errors == 0)],
            ["failed uploads = 0", "%d (whole %d, chunked %d)" % (
                failed_uploads, recorder.failed_uploads[UPLOAD_WHOLE], recorder.failed_uploads[UPLOAD_CHUNKED]),
             verdict(failed_uploads == 0)],
            ["host CPU average < 80%", "%.1f%% (peak %.1f%%; this generator's share %.1f%%)" % (
                self.host_average, self.host_peak, self.host_share(self.own_cpu)), verdict(judged[2])],
            ["every request succeeded", "%d other errors, %d worker changes%s" % (
                recorder.other_errors, recorder.worker_changes, ", users stuck" if self.stuck else ""),
             verdict(clean)],
        ]
        print_table("the users' goal: %d workers, %d users, %d CPUs, no Redis" % (len(WORKERS), self.args.users,
                                                                                  self.cores),
                    ["goal", "figure", "verdict"], rows,
                    ["exit status: 0 when session errors, failed uploads and failed requests are 0; the latency and "
                     "CPU verdicts count too only with --strict (%s)" % ("given" if self.args.strict else "not given")],
                    align="lll")
        return clean and (not self.args.strict or all(judged))

    def print_proxy_log(self, clean):
        worth_reading = [line for line in self.other_lines
                         if re.search(r"rejected|error|exited|restart|timed out|refused|adopt|fail", line, re.I)]
        if self.server_errors or self.notes or (worth_reading and not clean):
            print("\n  proxy log lines worth reading (the whole log: %s%s):" % (
                self.rig.proxy_log, "" if self.args.keep_temp else ", kept with --keep-temp"))
            for line in self.server_errors[:10] + self.notes[:10] + worth_reading[:20]:
                print("    " + line)



if __name__ == "__main__":
    sys.exit(main())
