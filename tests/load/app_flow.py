"""The app's users, shared by the load scripts: test data (Dataset), one simulated person doing the
whole flow (User), what is measured (Recorder), CPU and memory figures, the proxy under test (Rig)
and the tables.

    from app_flow import Dataset, Recorder, Rig, User, ...

app_users.py (the users' goal) and fault_run.py (the same users under faults) import it from this
directory. The flow a User repeats, and what counts as failed, are described in app_users.py's
docstring. Python standard library only.
"""

import collections
import datetime
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

from browser_support import TestFailure, http_get, log, routing_key, run_proxy, start_proxy  # noqa: E402

WORKERS = ["w1", "w2", "w3", "w4"]
WORKER_ARGS = "--session-idle-timeout-s 86400"  # the app keeps every user's session for the whole run
PROXY_COOKIE = "stickyproxy"  # write_proxy_config's routing.cookie_name
APP_COOKIE = "chatmrpt_session"  # backend/app/app_context.h kSessionCookie
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
    """Latencies per route and every failure, shared by the user threads. With `moves_expected`
    (a fault run) a user's change of worker is counted, not listed among the failures."""

    def __init__(self, started, moves_expected=False):
        self.started = started
        self.moves_expected = moves_expected
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
        self.resent = 0  # requests sent again after a keep-alive connection turned out closed
        self.reasked = 0  # chat messages sent again after their stream was cut short, as the page does
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
            if not self.moves_expected and len(self.samples) < ERROR_SAMPLES:
                self.samples.append("t=%.1fs %s: %s answered by %s, its session was on %s [worker change]" % (
                    time.monotonic() - self.started, user.name, route, new, old))

    def count(self, attribute, key=None):
        with self.lock:
            if key is None:
                setattr(self, attribute, getattr(self, attribute) + 1)
            else:
                getattr(self, attribute)[key] += 1


def set_cookies(response):
    """(name, morsel) of every cookie the response sets; malformed Set-Cookie fields skipped."""
    for header in response.msg.get_all("Set-Cookie") or []:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(header)
        except http.cookies.CookieError:
            continue
        yield from jar.items()


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


class StreamCut(StepFailure):
    """A streamed answer that ended before its done event."""


def session_error_text(text):
    lowered = text.lower()
    for needle, _ in SESSION_ERROR_TEXTS:
        if needle.lower() in lowered:
            return needle
    return None


# ---------------------------------------------------------------------------- one user

class Answer:
    """One response: status, headers (names case-insensitive, as HTTP's are), body, X-Worker."""

    def __init__(self, status, headers, body, worker):
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body
        self.worker = worker

    def header(self, name):
        return self.headers.get(name.lower(), "")


class User(threading.Thread):
    """One person in a browser: a keep-alive connection, both cookies, the flow in a loop.

    The user starts no flow after `stop_at`; one under way then is cut short, or with
    `finish_flows` finished (until `hard_stop`), as a fault run needs to judge every flow begun."""

    def __init__(self, index, args, port, data, recorder, start_at, stop_at, hard_stop, finish_flows=False):
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
        self.finish_flows = finish_flows
        self.in_flow = False
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
        for name, morsel in set_cookies(response):
            if morsel["max-age"] in ("0", 0) or morsel.value == "":
                self.cookies.pop(name, None)
                continue
            if name == PROXY_COOKIE:
                # A signed cookie is re-issued with a new pin after a move: the key inside it must stay.
                key = routing_key(morsel.value)
                if self.proxy_key is not None and key != self.proxy_key:
                    raise StepFailure(route, "the proxy replaced this user's routing key (a new session)",
                                      session=True)
                self.proxy_key = key
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
        reused = self.connection is not None and self.connection.sock is not None
        connection = self.open_connection()
        sent = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as error:
            # A keep-alive connection the server closed while it sat idle: a browser sends the request
            # again on a new connection (it got no answer to act on). Counted, so it shows.
            self.close()
            if not reused:
                raise StepFailure(route, "%s %s: no answer (%s: %s) after %.2f s" % (
                    method, path, type(error).__name__, error, time.monotonic() - sent))
            self.recorder.count("resent")
            return self.send_once(route, method, path, body, headers)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise StepFailure(route, "%s %s: no answer (%s: %s) after %.2f s" % (
                method, path, type(error).__name__, error, time.monotonic() - sent))
        return response, sent

    def send_once(self, route, method, path, body, headers):
        """The request on a new connection; no answer is a failure."""
        connection = self.open_connection()
        sent = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            return connection.getresponse(), sent
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise StepFailure(route, "%s %s: no answer on a new connection either (%s: %s) after %.2f s" % (
                method, path, type(error).__name__, error, time.monotonic() - sent))

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
        return Answer(response.status, response.getheaders(), body, worker)

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
        end = self.hard_stop if self.finish_flows and self.in_flow else self.stop_at
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        return time.monotonic() < end

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
                self.in_flow = True
                try:
                    if not self.flow():
                        self.recorder.count("flows_cut")
                        break
                    self.flows_done += 1
                    self.recorder.count("flows", self.path)
                except StepFailure as failure:
                    self.recorder.failure(self, failure, self.path)
                finally:
                    self.in_flow = False
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
        """Asks the chat; a stream cut short (its worker died mid-answer: no proxy can finish a
        response already under way) is asked again once, as the page does."""
        try:
            self.chat_once()
        except StreamCut:
            self.recorder.count("reasked")
            self.chat_once()

    def chat_once(self):
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
            raise StreamCut(route, "the stream broke off after %d events (%s: %s)" % (
                events, type(error).__name__, error))
        whole = time.monotonic() - sent
        self.last_used = time.monotonic()
        if response.will_close:
            self.close()
        self.recorder.request(route, first if first is not None else whole)
        self.recorder.request(route + STREAM_END, whole, counts_as_request=False)
        if done is None:
            self.close()  # a stream cut short: the connection is not reusable
        self.take_cookies(response, route)
        self.note_worker(response.getheader("X-Worker"), route)
        reply = "".join(text)
        found = session_error_text(reply)
        if found:
            raise StepFailure(route, "the chat answered %r" % reply[:160], session=True, text=found)
        self.expect(response.status == 200, route, "HTTP %d for the stream" % response.status)
        if done is None:
            raise StreamCut(route, "the stream ended after %d events without its done event" % events)
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
    """The proxy under test: started, asked (/status.json, ctl) and its log read."""

    def __init__(self, build_dir, work_dir, processes):
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.processes = processes
        self.proxy_log = os.path.join(work_dir, "stickyproxy.log")  # as run_proxy writes it
        self.port = self.metrics_port = self.proxy = self.config = None

    def start(self, deadline):
        """The proxy with four backend workers (write_proxy_config's shape)."""
        self.port, self.metrics_port, self.config, self.proxy, _ = start_proxy(
            self.build_dir, self.work_dir, self.processes, deadline, "stickyproxy-backend", len(WORKERS),
            worker_args=WORKER_ARGS)
        self.started()

    def start_with(self, deadline, config, port, metrics_port):
        """The proxy with a config written by the caller, listening on `port` and `metrics_port`."""
        self.config, self.port, self.metrics_port = config, port, metrics_port
        self.proxy, _ = run_proxy(self.build_dir, self.work_dir, self.processes, deadline, config, port)
        self.started()

    def started(self):
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


def missing_binaries(build_dir):
    """The binaries the app's users need that `build_dir` lacks."""
    return [os.path.join(build_dir, binary) for binary in ("stickyproxy", "stickyproxy-backend", "stickyproxy-gendata")
            if not os.access(os.path.join(build_dir, binary), os.X_OK)]


ADOPTED = re.compile(r"adopted session \S+ from (\S+)")  # backend/app/app_context.cpp
FIELD = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|\S+)')  # an access-log field, value quoted or bare


# ---------------------------------------------------------------------------- the proxy's log

def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_log_lines(*paths):
    """The lines of one or more proxy logs; the access-log lines of several logs merged in time
    order (their timestamps have milliseconds), the other lines after them. Within one
    millisecond a line with prev= goes first: it is a session's first request at its new worker,
    so its other lines of that millisecond came after it (two instances' logs interleave so)."""
    access, other = [], []
    for path in paths:
        with open(path, "rb") as source:
            for raw in source:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                (access if " method=" in line and " status=" in line else other).append(line)
    access.sort(key=lambda line: (line.split(" ", 1)[0], " prev=" not in line))  # ISO times sort as text
    return access + other


class LogFigures:
    """What proxy logs say (the access log on stdout, the workers' stderr): moves per session key
    and whether each was announced (prev=), the app's adoptions, uploads in flight at a kill.

    `lines`: read_log_lines(); `kills`: (Unix time, worker, pid) of each kill -9."""

    def __init__(self, lines, kills=()):
        self.requests = 0
        self.server_errors = []
        self.moves = 0
        self.announced = 0
        self.unannounced = []
        self.wrong_prev = []  # prev= naming another worker than the session's previous one
        self.prev_without_move = 0
        self.adopted = collections.Counter()
        self.uploads_at_kill = 0
        self.upload_statuses_at_kill = collections.Counter()
        last_worker = {}
        for line in lines:
            if " method=" not in line or " status=" not in line:
                adoption = ADOPTED.search(line)
                if adoption:
                    self.adopted[adoption.group(1)] += 1
                continue
            fields = dict(FIELD.findall(line))
            self.requests += 1
            status = int(fields.get("status", "0"))
            if status >= 500:
                self.server_errors.append(line)
            worker, key, prev = fields.get("worker", "-"), fields.get("key", "-"), fields.get("prev")
            if kills and fields.get("path", "").strip('"').startswith("/upload"):
                self.upload_at_kill(line, fields, status, kills)
            if worker == "-" or key == "-":
                continue
            before = last_worker.get(key)
            last_worker[key] = worker
            if before is None or before == worker:
                if prev is not None:
                    self.prev_without_move += 1
                continue
            self.moves += 1
            if prev == before:
                self.announced += 1
            elif prev is not None:
                self.wrong_prev.append(line)
            else:
                self.unannounced.append(line)
        self.sessions = len(last_worker)

    def upload_at_kill(self, line, fields, status, kills):
        end = parse_time(line.split(" ", 1)[0])
        try:
            duration = float(fields.get("duration", "0"))
        except ValueError:
            duration = 0.0
        if end is None:
            return
        for when, _name, _pid in kills:
            if end - duration <= when <= end:
                self.uploads_at_kill += 1
                self.upload_statuses_at_kill[status] += 1
                return


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


