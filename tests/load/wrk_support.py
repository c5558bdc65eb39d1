"""wrk for the on-demand load scripts: one wrk process started through a ProcessSet, waited for
or interrupted, its summary read back; and the tables the scripts print their figures in.

    from wrk_support import WrkResult, WrkRun, parse_wrk, print_table, ms, wrk_failures

    run = WrkRun(processes, work_dir, "alone", "http://127.0.0.1:PORT/ping", threads=2, connections=32,
                 seconds=10, script=lua_path, script_args=["16"])
    result = run.finish(timeout=25)          # or run.interrupt() for an open-ended run
    print(result.rps, result.p99, wrk_failures(result))

Used by operate_under_load.py and peer_benchmark.py (next to this file). wrk runs with --latency
(p50 and p99 come from its percentile table) and --timeout 10s. Python standard library only,
plus Debian's wrk binary.
"""

import collections
import os
import re
import signal
import subprocess
import sys

_BROWSER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser")
if _BROWSER_DIR not in sys.path:
    sys.path.insert(0, _BROWSER_DIR)

from browser_support import TestFailure  # noqa: E402

WrkResult = collections.namedtuple("WrkResult", "requests rps p50 p99 max non_2xx socket_errors")
TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(text):
    """wrk's summary: --latency percentiles, Requests/sec, non-2xx answers and socket errors."""
    percentiles = {int(p): float(v) * TIME_UNITS[u]
                   for p, v, u in re.findall(r"^\s+(\d+)%\s+" + TIME + r"\s*$", text, re.M)}
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+" + TIME, text, re.M)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not (latency and total and rps and 50 in percentiles and 99 in percentiles):
        raise TestFailure("could not read wrk's summary:\n%s" % text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(requests=int(total.group(1)), rps=float(rps.group(1)), p50=percentiles[50],
                     p99=percentiles[99], max=float(latency.group(1)) * TIME_UNITS[latency.group(2)],
                     non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                     socket_errors=sum(map(int, socket_errors.groups())) if socket_errors else 0)


def wrk_failures(result):
    return result.non_2xx + result.socket_errors


class WrkRun:
    """One wrk process writing its summary to <log_dir>/wrk-<name>.out: waited for, or interrupted
    (SIGINT makes wrk stop and print its summary). `script` is a Lua script given to wrk with -s,
    `script_args` what follows `--` (the script's init(args))."""

    def __init__(self, processes, log_dir, name, url, threads, connections, seconds, script=None,
                 script_args=()):
        self.name = name
        self.log_path = os.path.join(log_dir, "wrk-%s.out" % name)
        # wrk counts an answer slower than --timeout (default 2 s) as a socket error: a slow answer
        # is a latency figure here, a failed request is one that never comes.
        argv = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency",
                "--timeout", "10s"]
        if script:
            argv += ["-s", script, url, "--"] + list(script_args)
        else:
            argv.append(url)
        self.process = processes.start("wrk " + name, argv, self.log_path)

    def finish(self, timeout):
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("wrk %s (pid %d) did not finish within %.0f s" % (self.name, self.process.pid, timeout))
        with open(self.log_path) as output:
            return parse_wrk(output.read())

    def interrupt(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.finish(timeout=10.0)


def print_table(title, header, rows, notes=()):
    cells = [list(header)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    print("\n" + title)
    for row in cells:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for note in notes:
        print("  " + note)
    sys.stdout.flush()


def ms(seconds):
    return "%.2f ms" % (seconds * 1000.0)
