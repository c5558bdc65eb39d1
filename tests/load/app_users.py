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
import http.cookies
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import (TestFailure, begin_run, http_get, log, start_proxy, tail,  # noqa: E402
                             tear_down)

WORKERS = ["w1", "w2", "w3", "w4"]
WORKER_ARGS = "--session-idle-timeout-s 86400"  # the app keeps every user's session for the whole run
PROXY_COOKIE = "stickyproxy"  # write_proxy_config's routing.cookie_name
APP_COOKIE = "chatmrpt_session"  # backend/app/app_context.h kSessionCookie
RAMP_SECONDS = 10.0
CHUNKED_EVERY = 5  # every 5th user uploads the big data set in chunks
BIG_WARDS = 500
BIG_DETAIL = 256  # gendata: 500 wards at 256 vertices per edge make a zip over 5 MB
CHUNK_THRESHOLD = 5 * 1024 * 1024  # backend/web/index.html kChunkThreshold
CHUNK_SIZE = 2 * 1024 * 1024  # backend/web/index.html kChunkSize
REQUEST_TIMEOUT = 60.0  # the proxy's upstream_response in write_proxy_config
RECONNECT_AFTER_IDLE = 60.0  # below the proxy's keepalive_idle (75 s), as a browser would
CHAT_MESSAGE = "which wards are highest risk"
CHAT_ANSWER_START = "The highest-risk wards"  # backend/app/chat_routes.cpp, kHighestRisk
RESULT_CSVS = [  # backend/analysis: the files /run_analysis writes, listed by /export/list
    "analysis_vulnerability_rankings.csv",
    "composite_scores.csv",
    "model_formulas.csv",
    "analysis_pca_results.csv",
    "unified_dataset.csv",
]
GOAL_SECONDS = 3.0
GOAL_CPU_PERCENT = 80.0
ERROR_SAMPLES = 12  # failures printed in full
STREAM_END = " (to its end)"  # the latency row of whole chat streams

# What the app answers when a request reaches a worker that does not know the session, or knows
# it without the files the user made: the users' "file not found", "please run an analysis
# first", missing chunks and vanishing download links. Matched case-insensitively in JSON
# messages, error bodies and chat answers.
SESSION_ERROR_TEXTS = [
    ("Please upload both CSV and shapefile data", "session_operations.h kUploadBothFirstMessage (/run_analysis)"),
    ("Please run the analysis first", "session_operations.h kAnalysisFirstMessage (maps, reports); chat_routes.cpp"),
    ("file not found", "visualization_routes.cpp kVizNotFound; export_routes.cpp download"),
    ("Report not found", "export_routes.cpp downloadReport"),
    ("Session not found", "export_routes.cpp ownSession (export list and download)"),
    ("Missing chunk", "upload_routes.cpp finalizeUpload, assembleChunks"),
    ("This session changed", "session_operations.cpp, visualization_routes.cpp, export_routes.cpp (409)"),
    ("This session's data changed", "session_operations.cpp runAnalysis (409)"),
    ("Could not reload this session's data", "session_operations.cpp withLoadedSession"),
    ("Could not rebuild this session's analysis", "session_operations.cpp withLoadedSession"),
    ("Start by uploading your ward data", "chat_routes.cpp: the chat's greeting to a session without data"),
]

UPLOAD_WHOLE = "whole"
UPLOAD_CHUNKED = "chunked"


class UsageError(Exception):
    """A problem with the options or the environment: exit status 2."""


# ---------------------------------------------------------------------------- test data

class Dataset:
    """One generated data set, with the bodies its uploads send built once."""

    def __init__(self, build_dir, out_dir, seed, wards, detail, timeout):
        os.makedirs(out_dir, exist_ok=True)
        argv = [os.path.join(build_dir, "stickyproxy-gendata"), "--seed", str(seed), "--wards", str(wards),
                "--out", out_dir]
        if detail is not None:
            argv += ["--detail", str(detail)]
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UsageError("%s did not finish within %.0f s" % (" ".join(argv), timeout))
        if result.returncode != 0:
            raise UsageError("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                     result.stderr.decode("utf-8", "replace").strip()))
        self.wards = wards
        self.csv_name = "wards.csv"
        self.zip_name = "wards_shapefile.zip"
        with open(os.path.join(out_dir, self.csv_name), "rb") as source:
            self.csv = source.read()
        with open(os.path.join(out_dir, self.zip_name), "rb") as source:
            self.zip = source.read()
        boundary = "----apploadWhole%d" % seed
        self.whole_type = "multipart/form-data; boundary=" + boundary
        self.whole_body = multipart(boundary, [], [("csv_file", self.csv_name, "text/csv", self.csv),
                                                   ("shapefile", self.zip_name, "application/zip", self.zip)])

    def chunks(self):
        """(file_type, file name, [chunk bytes]) per file, as the page cuts them."""
        cut = []
        for file_type, name, data in (("csv", self.csv_name, self.csv), ("shapefile", self.zip_name, self.zip)):
            count = max(1, math.ceil(len(data) / CHUNK_SIZE))
            cut.append((file_type, name, [data[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE] for i in range(count)]))
        return cut


def multipart(boundary, fields, files):
    """A multipart/form-data body: `fields` (name, value) first, then `files` (name, filename,
    content type, bytes), in that order, as a browser's FormData sends them."""
    parts = []
    for name, value in fields:
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                      % (boundary, name, value)).encode("utf-8"))
    for name, filename, content_type, data in files:
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                      "Content-Type: %s\r\n\r\n" % (boundary, name, filename, content_type)).encode("utf-8"))
        parts.append(data)
        parts.append(b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode("utf-8"))
    return b"".join(parts)


# ---------------------------------------------------------------------------- what is measured

def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class Recorder:
    """Latencies per route and every failure, shared by the user threads."""

    def __init__(self, started):
        self.started = started
        self.lock = threading.Lock()
        self.latencies = {}  # route -> [seconds]
        self.route_errors = {}  # route -> count
        self.route_order = []
        self.requests = 0
        self.session_errors = 0
        self.failed_uploads = {UPLOAD_WHOLE: 0, UPLOAD_CHUNKED: 0}
        self.uploads = {UPLOAD_WHOLE: 0, UPLOAD_CHUNKED: 0}
        self.other_errors = 0
        self.worker_changes = 0
        self.flows = {UPLOAD_WHOLE: 0, UPLOAD_CHUNKED: 0}
        self.flows_cut = 0
        self.samples = []  # the first ERROR_SAMPLES failures, in full
        self.texts_seen = {}  # session-error text -> count

    def _route(self, route):
        if route not in self.latencies:
            self.latencies[route] = []
            self.route_errors[route] = 0
            self.route_order.append(route)

    def request(self, route, seconds, counts_as_request=True):
        with self.lock:
            self._route(route)
            self.latencies[route].append(seconds)
            if counts_as_request:
                self.requests += 1

    def failure(self, user, failure, upload_path):
        with self.lock:
            self._route(failure.route)
            self.route_errors[failure.route] += 1
            if failure.session:
                self.session_errors += 1
            if failure.text:
                self.texts_seen[failure.text] = self.texts_seen.get(failure.text, 0) + 1
            if failure.upload:
                self.failed_uploads[upload_path] += 1
            if not failure.session and not failure.upload:
                self.other_errors += 1
            if len(self.samples) < ERROR_SAMPLES:
                self.samples.append("t=%.1fs %s (worker %s, flow %d): %s: %s%s" % (
                    time.monotonic() - self.started, user.name, user.worker or "?", user.flow_number,
                    failure.route, failure.message, " [session error]" if failure.session else ""))

    def worker_change(self, user, old, new, route):
        with self.lock:
            self.worker_changes += 1
            if len(self.samples) < ERROR_SAMPLES:
                self.samples.append("t=%.1fs %s: %s answered by %s, its session was on %s [worker change]" % (
                    time.monotonic() - self.started, user.name, route, new, old))

    def count(self, attribute, key=None):
        with self.lock:
            if key is None:
                setattr(self, attribute, getattr(self, attribute) + 1)
            else:
                getattr(self, attribute)[key] += 1


class StepFailure(Exception):
    """A step a user would see fail: `session` when it is a session error, `upload` when it was an
    upload; `text` is the session-error text found, if any."""

    def __init__(self, route, message, session=False, upload=False, text=None):
        super().__init__(message)
        self.route = route
        self.message = message
        self.session = session
        self.upload = upload
        self.text = text


def session_error_text(text):
    lowered = text.lower()
    for needle, _ in SESSION_ERROR_TEXTS:
        if needle.lower() in lowered:
            return needle
    return None


# ---------------------------------------------------------------------------- one user

class Answer:
    def __init__(self, status, headers, body, worker):
        self.status = status
        self.headers = headers
        self.body = body
        self.worker = worker

    def header(self, name):
        return self.headers.get(name, "")


class User(threading.Thread):
    """One person in a browser: a keep-alive connection, both cookies, the flow in a loop."""

    def __init__(self, index, args, port, data, recorder, start_at, stop_at, hard_stop):
        super().__init__(name="user-%02d" % (index + 1), daemon=True)
        self.index = index
        self.port = port
        self.path = UPLOAD_CHUNKED if (index + 1) % CHUNKED_EVERY == 0 else UPLOAD_WHOLE
        self.data = data[self.path]
        self.recorder = recorder
        self.rng = random.Random("%d/%d" % (args.seed, index))
        self.think_min = args.think_min
        self.think_max = args.think_max
        self.start_at = start_at
        self.stop_at = stop_at
        self.hard_stop = hard_stop
        self.connection = None
        self.last_used = 0.0
        self.cookies = {}
        self.proxy_key = None
        self.worker = None
        self.flow_number = 0
        self.flows_done = 0
        self.crashed = None

    # -- plumbing

    def remaining(self):
        return self.hard_stop - time.monotonic()

    def cookie_header(self):
        return "; ".join("%s=%s" % item for item in self.cookies.items())

    def take_cookies(self, response, route):
        for header in response.msg.get_all("Set-Cookie") or []:
            jar = http.cookies.SimpleCookie()
            try:
                jar.load(header)
            except http.cookies.CookieError:
                continue
            for name, morsel in jar.items():
                if morsel["max-age"] in ("0", 0) or morsel.value == "":
                    self.cookies.pop(name, None)
                    continue
                if name == PROXY_COOKIE:
                    if self.proxy_key is not None and morsel.value != self.proxy_key:
                        raise StepFailure(route, "the proxy replaced this user's routing key (a new session)",
                                          session=True)
                    self.proxy_key = morsel.value
                self.cookies[name] = morsel.value

    def note_worker(self, worker, route):
        if not worker:
            return
        if self.worker is not None and worker != self.worker:
            self.recorder.worker_change(self, self.worker, worker, route)
        self.worker = worker

    def open_connection(self):
        if self.connection is not None and time.monotonic() - self.last_used > RECONNECT_AFTER_IDLE:
            self.close()
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        timeout = max(1.0, min(REQUEST_TIMEOUT, self.remaining()))
        self.connection.timeout = timeout
        if self.connection.sock is not None:
            self.connection.sock.settimeout(timeout)
        return self.connection

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def send(self, route, method, path, body=None, content_type=None, accept="application/json"):
        """Sends one request; returns (response, sent at) with the head read."""
        headers = {"Accept": accept}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        if content_type:
            headers["Content-Type"] = content_type
        connection = self.open_connection()
        sent = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise StepFailure(route, "%s %s: no answer (%s: %s) after %.2f s" % (
                method, path, type(error).__name__, error, time.monotonic() - sent))
        return response, sent

    def finish(self, route, method, path, response, sent, record=True):
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise StepFailure(route, "%s %s: the answer broke off (%s: %s) after %.2f s" % (
                method, path, type(error).__name__, error, time.monotonic() - sent))
        elapsed = time.monotonic() - sent
        self.last_used = time.monotonic()
        if response.will_close:
            self.close()
        if record:
            self.recorder.request(route, elapsed)
        worker = response.getheader("X-Worker")
        self.take_cookies(response, route)
        self.note_worker(worker, route)
        return Answer(response.status, {k: v for k, v in response.getheaders()}, body, worker)

    def call(self, route, method, path, body=None, content_type=None):
        response, sent = self.send(route, method, path, body, content_type)
        return self.finish(route, method, path, response, sent)

    def post_json(self, route, path, payload):
        return self.call(route, "POST", path, json.dumps(payload).encode("utf-8"), "application/json")

    def json_success(self, route, answer, upload=False):
        """The answer's JSON object when it is a 200 with status "success"; StepFailure otherwise."""
        text = answer.body.decode("utf-8", "replace")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        message = document.get("message", "") if isinstance(document, dict) else text[:200]
        found = session_error_text(message if isinstance(message, str) else str(message))
        if found:
            raise StepFailure(route, "HTTP %d: %s" % (answer.status, message), session=True, upload=upload,
                              text=found)
        if answer.status != 200:
            raise StepFailure(route, "HTTP %d: %s" % (answer.status, message or text[:200]), upload=upload)
        if not isinstance(document, dict):
            raise StepFailure(route, "HTTP 200 but not a JSON object: %r" % text[:200], upload=upload)
        if document.get("status") != "success":
            raise StepFailure(route, "status %r: %s" % (document.get("status"), message), upload=upload)
        return document

    def expect(self, holds, route, message, session=False, upload=False):
        if not holds:
            raise StepFailure(route, message, session=session, upload=upload)

    def file_body(self, route, answer, content_type, what):
        """A download a user would notice as broken: not 200, the wrong type, or empty."""
        if answer.status != 200:
            text = answer.body.decode("utf-8", "replace")
            try:
                message = json.loads(text).get("message", text[:200])
            except (ValueError, AttributeError):
                message = text[:200]
            found = session_error_text(message)
            raise StepFailure(route, "HTTP %d for %s: %s" % (answer.status, what, message), session=bool(found),
                              text=found)
        self.expect(answer.header("Content-Type").startswith(content_type), route,
                    "%s came as %r, expected %s" % (what, answer.header("Content-Type"), content_type))
        self.expect(len(answer.body) > 0, route, "%s is empty" % what)
        return answer.body

    def think(self):
        """A pause before the next click; False when the run is over."""
        pause = self.rng.uniform(self.think_min, self.think_max)
        left = self.stop_at - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        return time.monotonic() < self.stop_at

    # -- the flow

    def run(self):
        try:
            time.sleep(max(0.0, self.start_at - time.monotonic()))
            try:
                self.open_page()
            except StepFailure as failure:
                self.recorder.failure(self, failure, self.path)
            self.think()  # choosing the files
            while time.monotonic() < self.stop_at and self.remaining() > 0:
                self.flow_number += 1
                try:
                    if not self.flow():
                        self.recorder.count("flows_cut")
                        break
                    self.flows_done += 1
                    self.recorder.count("flows", self.path)
                except StepFailure as failure:
                    self.recorder.failure(self, failure, self.path)
                if not self.think():
                    break
        except Exception as error:  # a bug in this script: reported, never silent
            self.crashed = "%s: %r" % (self.name, error)
        finally:
            self.close()

    def open_page(self):
        answer = self.call("GET /", "GET", "/")
        page = self.file_body("GET /", answer, "text/html", "the page")
        self.expect(b"<html" in page.lower(), "GET /", "GET / is not the page")
        route = "GET /session_status"
        status = self.json_success(route, self.call(route, "GET", "/session_status"))
        self.expect("session_id" in status, route, "no session_id in %r" % status)

    def flow(self):
        """One pass through the app; True when it completed, False when the run ended during it."""
        sid = self.upload()
        if not self.think():
            return False
        self.run_analysis()
        if not self.think():
            return False
        vulnerability = self.show_map("vulnerability_map", sid)
        if not self.think():
            return False
        first = self.show_map("composite_map", sid)
        if not self.think():
            return False
        second = self.next_composite(sid, first)
        if not self.think():
            return False
        self.chat()
        if not self.think():
            return False
        listed = self.export_list(sid, {vulnerability, first, second})
        if not self.think():
            return False
        self.download(sid, listed)
        if not self.think():
            return False
        self.session_status(sid)
        return True

    def upload(self):
        self.recorder.count("uploads", self.path)
        if self.path == UPLOAD_CHUNKED:
            route, document = self.upload_chunked()
        else:
            route = "POST /upload_both_files"
            answer = self.call(route, "POST", "/upload_both_files", self.data.whole_body, self.data.whole_type)
            document = self.json_success(route, answer, upload=True)
        sid = document.get("session_id")
        self.expect(isinstance(sid, str) and re.fullmatch(r"[0-9a-f]{32}", sid or ""), route,
                    "no session id in the upload answer: %r" % document, upload=True)
        self.expect(document.get("upload_type") == "csv_shapefile", route,
                    "upload_type %r, expected csv_shapefile" % document.get("upload_type"), upload=True)
        message = document.get("message", "")
        expected = "Uploaded %d wards" % self.data.wards
        self.expect(message.startswith(expected) and "%d ward boundaries" % self.data.wards in message, route,
                    "the upload answered %r, expected %r and %d ward boundaries" % (message, expected, self.data.wards),
                    upload=True)
        # The app gives every upload a new session id; the browser must be holding it now.
        self.expect(self.cookies.get(APP_COOKIE) == sid, route,
                    "the upload's new session %s did not reach the %s cookie (%r)"
                    % (sid, APP_COOKIE, self.cookies.get(APP_COOKIE)), session=True, upload=True)
        return sid

    def upload_chunked(self):
        upload_id = "%032x" % self.rng.getrandbits(128)
        route = "POST /upload/chunk"
        totals = {}
        for file_type, name, pieces in self.data.chunks():
            totals[file_type] = len(pieces)
            for index, piece in enumerate(pieces):
                boundary = "----apploadChunk%s%d" % (upload_id[:8], index)
                body = multipart(boundary, [("upload_id", upload_id), ("file_type", file_type),
                                            ("chunk_index", str(index)), ("total_chunks", str(len(pieces)))],
                                 [("chunk", name, "application/octet-stream", piece)])
                answer = self.call(route, "POST", "/upload/chunk", body, "multipart/form-data; boundary=" + boundary)
                document = self.json_success(route, answer, upload=True)
                self.expect(document.get("received_chunks") == index + 1, route,
                            "after %s chunk %d of %d the worker holds %r of them" % (
                                file_type, index + 1, len(pieces), document.get("received_chunks")),
                            session=True, upload=True)
        route = "POST /upload/finalize"
        answer = self.post_json(route, "/upload/finalize", {
            "upload_id": upload_id, "csv_filename": self.data.csv_name, "shapefile_filename": self.data.zip_name,
            "csv_total_chunks": totals["csv"], "shp_total_chunks": totals["shapefile"]})
        return route, self.json_success(route, answer, upload=True)

    def run_analysis(self):
        route = "POST /run_analysis"
        document = self.json_success(route, self.post_json(route, "/run_analysis", {}))
        self.expect(document.get("ward_count") == self.data.wards, route,
                    "ward_count %r, expected %d" % (document.get("ward_count"), self.data.wards))
        self.expect(bool(document.get("high_risk_wards")), route, "no high-risk wards in %r" % list(document))

    def get_map_file(self, web_path, sid, what):
        route = "GET /serve_viz_file/<sid>/<map>"
        self.expect(isinstance(web_path, str) and web_path.startswith("/serve_viz_file/%s/" % sid), route,
                    "the %s link %r is not this session's (%s)" % (what, web_path, sid), session=True)
        body = self.file_body(route, self.call(route, "GET", web_path), "text/html", what)
        self.expect(b"<svg" in body, route, "%s (%s) holds no SVG" % (what, web_path))
        return web_path.rsplit("/", 1)[1]

    def show_map(self, map_type, sid):
        route = "POST /get_visualization"
        document = self.json_success(route, self.post_json(route, "/get_visualization", {"type": map_type}))
        if map_type == "composite_map":
            self.expect(document.get("current_page") == 1 and (document.get("total_pages") or 0) >= 2, route,
                        "composite paging %r of %r, expected page 1 of at least 2"
                        % (document.get("current_page"), document.get("total_pages")))
        return self.get_map_file(document.get("web_path"), sid, map_type)

    def next_composite(self, sid, first_file):
        route = "POST /navigate_composite_map"
        document = self.json_success(route, self.post_json(route, "/navigate_composite_map",
                                                           {"direction": "next", "current_page": 1}))
        self.expect(document.get("current_page") == 2, route, "next from page 1 gave page %r"
                    % document.get("current_page"))
        name = self.get_map_file(document.get("web_path"), sid, "composite page 2")
        self.expect(name != first_file, route, "page 2 is the same file as page 1 (%s)" % name)
        return name

    def chat(self):
        route = "POST /send_message_streaming"
        path = "/send_message_streaming"
        response, sent = self.send(route, "POST", path, json.dumps({"message": CHAT_MESSAGE}).encode("utf-8"),
                                   "application/json", accept="text/event-stream")
        if not response.getheader("Content-Type", "").startswith("text/event-stream"):
            # An error (or a server without streaming) answers JSON like /send_message.
            answer = self.finish(route, "POST", path, response, sent)
            document = self.json_success(route, answer)
            raise StepFailure(route, "a JSON answer instead of a stream: %r" % document)
        text, events, done, first = [], 0, None, None
        pending = []
        try:
            while True:
                line = response.readline()
                if not line:
                    break
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("data:"):
                    pending.append(line[5:].lstrip(" "))
                    if first is None:
                        first = time.monotonic() - sent
                elif not line and pending:
                    event = json.loads("\n".join(pending))
                    pending = []
                    events += 1
                    text.append(event.get("content") or "")
                    if event.get("done"):
                        done = event
        except (OSError, http.client.HTTPException, ValueError) as error:
            self.close()
            raise StepFailure(route, "the stream broke off after %d events (%s: %s)" % (
                events, type(error).__name__, error))
        whole = time.monotonic() - sent
        self.last_used = time.monotonic()
        if response.will_close:
            self.close()
        self.recorder.request(route, first if first is not None else whole)
        self.recorder.request(route + STREAM_END, whole, counts_as_request=False)
        self.take_cookies(response, route)
        self.note_worker(response.getheader("X-Worker"), route)
        reply = "".join(text)
        found = session_error_text(reply)
        if found:
            raise StepFailure(route, "the chat answered %r" % reply[:160], session=True, text=found)
        self.expect(response.status == 200, route, "HTTP %d for the stream" % response.status)
        self.expect(done is not None, route, "the stream ended after %d events without its done event" % events)
        self.expect(events >= 2, route, "the answer came in %d event(s), expected it streamed" % events)
        self.expect(reply.startswith(CHAT_ANSWER_START), route, "the chat answered %r" % reply[:160])

    def export_list(self, sid, maps_shown):
        route = "GET /export/list/<sid>"
        document = self.json_success(route, self.call(route, "GET", "/export/list/%s" % sid))
        files = {entry.get("filename"): entry.get("url") for entry in document.get("files") or []
                 if isinstance(entry, dict)}
        missing = [name for name in RESULT_CSVS + sorted(maps_shown) if name not in files]
        self.expect(not missing, route, "the export list lacks %s (download links vanished)" % missing, session=True)
        return files

    def download(self, sid, listed):
        name = self.rng.choice(RESULT_CSVS)
        route = "GET /export/download/<sid>/<file>"
        url = listed.get(name)
        self.expect(url == "/export/download/%s/%s" % (sid, name), route,
                    "the export list links %s to %r" % (name, url), session=True)
        answer = self.call(route, "GET", url)
        body = self.file_body(route, answer, "text/csv", name)
        self.expect(b"\n" in body, route, "%s has no line" % name)
        self.expect("attachment" in answer.header("Content-Disposition"), route,
                    "%s is not sent as an attachment" % name)

    def session_status(self, sid):
        route = "GET /session_status"
        document = self.json_success(route, self.call(route, "GET", "/session_status"))
        state = {key: document.get(key) for key in ("session_id", "csv_loaded", "shapefile_loaded",
                                                    "analysis_complete")}
        self.expect(state == {"session_id": sid, "csv_loaded": True, "shapefile_loaded": True,
                              "analysis_complete": True}, route,
                    "the app lost the session's state: %r (expected session %s, loaded and analysed)" % (state, sid),
                    session=True)


# ---------------------------------------------------------------------------- CPU and memory

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_host_cpu():
    """(busy, total) jiffies of all CPUs from /proc/stat (busy: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    total = sum(fields[:8])  # guest time is already counted in user and nice
    idle = fields[3] + fields[4]
    return total - idle, total


def process_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_peak_rss(pid):
    """VmHWM of the process in bytes (None when it is gone)."""
    try:
        with open("/proc/%s/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def own_cpu_seconds():
    times = os.times()
    return times.user + times.system


class CpuSampler(threading.Thread):
    """Host CPU busy % every second from /proc/stat, and the whole window's average."""

    def __init__(self):
        super().__init__(name="cpu-sampler", daemon=True)
        self.samples = []
        self.stopping = threading.Event()
        self.first = read_host_cpu()
        self.last = self.first

    def run(self):
        previous = self.first
        while not self.stopping.wait(1.0):
            current = read_host_cpu()
            if current[1] > previous[1]:
                self.samples.append(100.0 * (current[0] - previous[0]) / (current[1] - previous[1]))
            previous = current
        self.last = read_host_cpu()

    def stop(self):
        self.stopping.set()
        self.join(timeout=5.0)

    def average(self):
        busy = self.last[0] - self.first[0]
        total = self.last[1] - self.first[1]
        return 100.0 * busy / total if total > 0 else float("nan")


# ---------------------------------------------------------------------------- the proxy

class Rig:
    def __init__(self, build_dir, work_dir, processes):
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.proxy_log = os.path.join(work_dir, "stickyproxy.log")  # as start_proxy writes it
        self.port = self.metrics_port = self.proxy = self.config = None

    def start(self, deadline):
        self.port, self.metrics_port, self.config, self.proxy, _ = start_proxy(
            self.build_dir, self.work_dir, self.processes, deadline, "stickyproxy-backend", len(WORKERS),
            worker_args=WORKER_ARGS)
        log("proxy on 127.0.0.1:%d (pid %d), metrics on 127.0.0.1:%d, temp dir %s"
            % (self.port, self.proxy.pid, self.metrics_port, self.work_dir))

    def status(self):
        """/status.json's workers by name."""
        status, body = http_get(self.metrics_port, "/status.json", timeout=10.0)
        if status != 200:
            raise TestFailure("GET /status.json answered %d" % status)
        return {worker["name"]: worker for worker in json.loads(body.decode("utf-8"))["workers"]}

    def ctl_json(self, words):
        argv = [os.path.join(self.build_dir, "stickyproxy"), "ctl", "-c", self.config] + words + ["json"]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15.0)
        except subprocess.TimeoutExpired:
            raise TestFailure("`ctl %s json` did not answer within 15 s" % " ".join(words))
        if done.returncode != 0:
            raise TestFailure("`ctl %s json` exited %d: %s" % (" ".join(words), done.returncode,
                                                                (done.stdout + done.stderr).strip()))
        return json.loads(done.stdout)

    def log_summary(self):
        """(access-log lines, 5xx lines, lines the proxy answered itself, other log lines) of the proxy log."""
        access, server_errors, notes, other = 0, [], [], []
        try:
            with open(self.proxy_log, "rb") as source:
                lines = source.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return 0, [], [], []
        for line in lines:
            match = re.search(r' status=(\d+) ', line)
            if match and " method=" in line:
                access += 1
                if int(match.group(1)) >= 500:
                    server_errors.append(line)
                if " note=" in line:
                    notes.append(line)
            elif line.strip() and "admin: show" not in line:
                other.append(line)
        return access, server_errors, notes, other


# ---------------------------------------------------------------------------- output

def print_table(title, header, rows, notes=(), align=None):
    """`align`: one letter per column, l or r (default: the first column left, the others right)."""
    cells = [list(header)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    align = align or "l" + "r" * (len(header) - 1)
    print("\n" + title)
    for number, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) if align[column] == "l" else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths))).rstrip())
        if number == 0:
            print("  " + "  ".join("-" * width for width in widths))
    for note in notes:
        print("  " + note)
    sys.stdout.flush()


def ms(seconds):
    if seconds != seconds:  # nan
        return "-"
    return "%.0f ms" % (seconds * 1000.0) if seconds < 10 else "%.1f s" % seconds


def mib(size):
    return "-" if size is None else "%.1f MiB" % (size / 1048576.0)


def verdict(holds):
    return "PASS" if holds else "FAIL"


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


def missing_binaries(build_dir):
    return [os.path.join(build_dir, binary) for binary in ("stickyproxy", "stickyproxy-backend", "stickyproxy-gendata")
            if not os.access(os.path.join(build_dir, binary), os.X_OK)]


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


def figures(values):
    """p50, p95, p99 and max of an ascending list, as text."""
    return [ms(percentile(values, 0.50)), ms(percentile(values, 0.95)), ms(percentile(values, 0.99)),
            ms(values[-1] if values else float("nan"))]


def wrap(text, width=110):
    """`text` in lines of at most `width` characters, indented."""
    lines = [""]
    for word in text.split(" "):
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] += (" " if lines[-1] else "") + word
    return ["  " + line for line in lines]


def cpu_text(seconds):
    return "-" if seconds is None else "%.1f" % seconds


if __name__ == "__main__":
    sys.exit(main())
