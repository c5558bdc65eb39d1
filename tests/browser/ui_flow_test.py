#!/usr/bin/env python3
"""Headless Chromium drives the backend's web UI through the real proxy.

    python3 tests/browser/ui_flow_test.py --build-dir build [--timeout 120] [--keep-temp]

Starts build/stickyproxy with a config written here (four build/stickyproxy-backend workers on
Unix sockets, the proxy on a kernel-chosen loopback port), generates ward data with
build/stickyproxy-gendata, and drives Chromium over the DevTools protocol on
--remote-debugging-pipe (fds 3 and 4, NUL-terminated JSON). The flow, as a user would do it:

  1. a broken zip is refused with the server's message in the status line; then a CSV and
     zipped shapefile of 300 wards upload and the summary shows;
  2. run the analysis, see the high/medium/low lists;
  3. vulnerability map (an SVG with a shape per ward), composite maps and their next page,
     box plot;
  4. chat questions answered token by token over SSE, one with a map, one with a download;
  5. the export list holds the five result CSVs; PCA and variable maps; the HTML report and
     the results zip download; a reload restores the session; Clear session empties it;
  6. again with a shapefile over 5 MB, which the page must send through /upload/chunk, then
     the analysis and vulnerability map of that data.

Any JavaScript exception, console.error or browser log error in the page or its map frame fails
the test. Every process started here is stopped by pid in a finally block and the temp dir is
removed. Exit status 0 on success, 1 on failure, 2 on a usage or environment problem.

Python standard library only.
"""

import argparse
import json
import math
import os
import subprocess
import sys

from browser_support import (TestFailure, begin_run, find_chromium, log, open_page, save_screenshot, start_proxy,
                             tail, tear_down)

RESULT_CSVS = [
    "analysis_vulnerability_rankings.csv",
    "composite_scores.csv",
    "model_formulas.csv",
    "analysis_pca_results.csv",
    "unified_dataset.csv",
]
SMALL_WARDS = 300
BIG_WARDS = 500
BIG_DETAIL = 256  # gendata: 500 wards at 256 vertices per edge make a zip over 5 MB
CHUNK_THRESHOLD = 5 * 1024 * 1024
CHUNK_SIZE = 2 * 1024 * 1024
# The UI marks its body data-state="idle" once it has read the session from the server.
UI_READY = "document.body.dataset.state === 'idle'"
UI_PAGE = "the page (reading the session)"
















def generate_data(build_dir, out_dir, seed, wards, detail=None, timeout=60.0):
    os.makedirs(out_dir, exist_ok=True)
    argv = [os.path.join(build_dir, "stickyproxy-gendata"), "--seed", str(seed), "--wards", str(wards),
            "--out", out_dir]
    if detail is not None:
        argv += ["--detail", str(detail)]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise TestFailure("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                                  result.stderr.decode("utf-8", "replace")))
    return os.path.join(out_dir, "wards.csv"), os.path.join(out_dir, "wards_shapefile.zip")












# ------------------------------------------------------------------------------ the flow

# How many ward shapes the map frame's SVG holds: elements marked as wards when the map marks
# them, otherwise its paths and polygons.
WARD_SHAPES_JS = """(() => {
  const frame = document.getElementById('map-frame');
  if (!frame || frame.dataset.ready !== '1') return 0;
  const doc = frame.contentDocument;
  if (!doc) return 0;
  const svgs = doc.querySelectorAll('svg');
  if (!svgs.length) return 0;
  let marked = 0, shapes = 0;
  svgs.forEach(svg => {
    marked += svg.querySelectorAll('[data-ward], .ward').length;
    shapes += svg.querySelectorAll('path, polygon').length;
  });
  return marked || shapes;
})()"""


def wait_for_map(page, map_type, previous_path, what, timeout=30.0):
    """Waits until the frame has loaded a new map of `map_type`; returns its path."""
    return page.wait_for(
        "(() => { const f = document.getElementById('map-frame');"
        " return f.dataset.ready === '1' && f.dataset.type === %s && f.dataset.loadedPath &&"
        " f.dataset.loadedPath === f.dataset.path && f.dataset.path !== %s ? f.dataset.path : null; })()"
        % (json.dumps(map_type), json.dumps(previous_path or "")), what, timeout=timeout)


def chat(page, message, replies_after):
    """Sends `message` from the chat box; returns the finished answer (text, SSE event count, link)."""
    page.evaluate("document.getElementById('chat-input').value = %s" % json.dumps(message))
    page.click("chat-send")
    reply = page.wait_for(
        "(() => { const log = document.getElementById('chat-log');"
        " const replies = log.querySelectorAll('.msg.assistant');"
        " const last = replies[replies.length - 1];"
        " const link = last && last.querySelector('a.download');"
        " return log.dataset.streaming === '0' && log.dataset.replies === '%d' && last && last.dataset.done === '1'"
        " ? { text: last.textContent, error: last.classList.contains('error'),"
        "     events: window.chatmrptUi.counters.stream_events, download: link && link.getAttribute('href') }"
        " : null; })()" % replies_after,
        "the streamed answer to %r" % message, timeout=60.0)
    if reply["error"] or not reply["text"].strip() or reply["text"] == "(no answer)":
        raise TestFailure("the chat answer to %r is empty or an error: %r" % (message, reply["text"]))
    return reply


def upload(page, csv_path, zip_path, expected_wards):
    page.set_files("csv-file", [csv_path])
    page.set_files("shapefile-file", [zip_path])
    page.click("upload-button")
    page.wait_for("document.getElementById('data-summary').dataset.ready === '1' &&"
                  " document.body.dataset.state === 'uploaded'", "the data summary after upload", timeout=60.0)
    summary = page.evaluate("""(() => ({
      rows: document.getElementById('summary-rows').textContent,
      features: document.getElementById('summary-features').textContent,
      completeness: document.getElementById('summary-completeness').textContent,
      unmatched: (document.getElementById('summary-unmatched') || {}).textContent,
      progress: document.getElementById('upload-progress').value,
      variables: document.getElementById('analysis-variables').options.length,
    }))()""")
    if summary["rows"] != str(expected_wards):
        raise TestFailure("the summary shows %r rows, expected %d" % (summary["rows"], expected_wards))
    if summary["features"] != str(expected_wards):
        raise TestFailure("the summary shows %r shapefile features, expected %d"
                          % (summary["features"], expected_wards))
    if summary["progress"] != 100:
        raise TestFailure("the upload progress bar ends at %r, expected 100" % summary["progress"])
    if summary["variables"] < 1:
        raise TestFailure("no numeric columns were offered for the analysis")
    return summary


def run_analysis_and_map(page, expected_wards):
    page.click("run-analysis")
    page.wait_for("document.getElementById('risk-lists').dataset.ready === '1'", "the risk lists", timeout=60.0)
    counts = page.evaluate("['high', 'medium', 'low'].map(level =>"
                           " Number(document.getElementById('risk-' + level).dataset.count))")
    if not all(count > 0 for count in counts):
        raise TestFailure("a risk list is empty: high/medium/low = %s" % counts)
    page.click("map-vulnerability")
    path = wait_for_map(page, "vulnerability_map", None, "the vulnerability map")
    shapes = page.wait_for("(%s) >= %d ? (%s) : 0" % (WARD_SHAPES_JS, expected_wards, WARD_SHAPES_JS),
                           "an SVG with %d ward shapes in the map frame" % expected_wards, timeout=20.0)
    return counts, path, shapes


def first_run(page, url, data_dir, recorder):
    page.navigate(url, UI_READY, UI_PAGE)
    title = page.evaluate("document.title")
    if title != "ChatMRPT — malaria risk prioritisation":
        raise TestFailure("page title is %r" % title)
    recorder.check("page load")

    csv_path, zip_path = data_dir
    bad_zip = os.path.join(os.path.dirname(zip_path), "not_a_shapefile.zip")
    with open(bad_zip, "wb") as out:
        out.write(b"this is not a zip archive\n" * 64)
    page.set_files("csv-file", [csv_path])
    page.set_files("shapefile-file", [bad_zip])
    page.click("upload-button")
    shown = page.wait_for("(() => { const s = document.getElementById('status-line');"
                          " return s.dataset.kind === 'error' && document.body.dataset.state === 'error'"
                          " ? s.textContent : null; })()", "the upload error in the status line",
                          timeout=30.0, watch_status=False, expected_error="status of 400")
    # The page shows the server's own message, not just a status code. Chromium logs the 400
    # response as a failed resource load: expected here, and only here.
    if "the server answered" in shown or len(shown) < len("Upload failed: ") + 5:
        raise TestFailure("the status line does not show the server's message: %r" % shown)
    if page.evaluate("document.getElementById('data-summary').dataset.ready") != "0":
        raise TestFailure("a failed upload left a data summary on the page")
    page.devtools.pump(0.2)
    forgiven = page.forgiven + recorder.forgive("status of 400")
    recorder.check("the rejected upload")
    log("rejected upload: %r (%d expected browser log error)" % (shown, forgiven))

    summary = upload(page, csv_path, zip_path, SMALL_WARDS)
    path_taken = page.evaluate("document.body.dataset.uploadPath")
    if path_taken != "whole":
        raise TestFailure("small files went the %r upload path, expected whole" % path_taken)
    recorder.check("upload")
    log("upload: %s rows, %s features, completeness %s, unmatched %s"
        % (summary["rows"], summary["features"], summary["completeness"], summary["unmatched"]))

    counts, vulnerability_path, shapes = run_analysis_and_map(page, SMALL_WARDS)
    recorder.check("analysis and vulnerability map")
    log("analysis: high/medium/low %s; vulnerability map %s with %d ward shapes"
        % (counts, vulnerability_path, shapes))

    page.click("map-composite")
    composite_path = wait_for_map(page, "composite_map", vulnerability_path, "the composite map")
    paging = page.evaluate("window.chatmrptUi.state.composite")
    if not paging or paging["total"] < 2:
        raise TestFailure("the composite maps have no second page (paging %r)" % paging)
    page.click("map-next")
    next_path = wait_for_map(page, "composite_map", composite_path, "the next composite page")
    page.wait_for("window.chatmrptUi.state.composite.page === %d" % (paging["page"] + 1),
                  "the composite page number to advance")
    page.click("map-prev")
    back_path = wait_for_map(page, "composite_map", next_path, "the previous composite page")
    if back_path != composite_path:
        raise TestFailure("Prev from page 2 showed %s, expected page 1 (%s)" % (back_path, composite_path))
    page.click("map-next")
    next_path = wait_for_map(page, "composite_map", back_path, "the next composite page again")
    recorder.check("composite maps")
    log("composite maps: %s, next page %s, back and forth (%d pages)" % (composite_path, next_path, paging["total"]))

    page.click("map-box")
    box_path = wait_for_map(page, "box_plot", next_path, "the box plot")
    page.wait_for("(() => { const d = document.getElementById('map-frame').contentDocument;"
                  " return !!d && !!d.querySelector('svg'); })()", "an SVG in the box plot")
    recorder.check("box plot")
    log("box plot: %s" % box_path)

    reply = chat(page, "which wards are highest risk", 1)
    if reply["events"] < 2:
        raise TestFailure("the chat answer came in %d SSE event(s), expected it streamed" % reply["events"])
    recorder.check("chat")
    log("chat: %d SSE events, answer starts %r" % (reply["events"], reply["text"][:80]))
    reply = chat(page, "show me the vulnerability map", 2)
    chat_map = wait_for_map(page, "chat", box_path, "the map the chat answer points to")
    page.wait_for("(%s) >= %d" % (WARD_SHAPES_JS, SMALL_WARDS), "%d ward shapes in the chat's map" % SMALL_WARDS)
    reply = chat(page, "download the results", 3)
    if not reply["download"]:
        raise TestFailure("the chat answer to 'download the results' has no download link: %r" % reply["text"])
    recorder.check("chat with a map and a download")
    log("chat: map %s, download %s" % (chat_map, reply["download"]))

    page.click("export-refresh")
    files = page.wait_for("document.getElementById('export-list').dataset.ready === '1' &&"
                          " Array.from(document.querySelectorAll('#export-list li[data-filename]'))"
                          ".map(li => li.dataset.filename)", "the export list")
    missing = [name for name in RESULT_CSVS if name not in files]
    if missing:
        raise TestFailure("the export list lacks %s (it lists %s)" % (missing, files))
    recorder.check("export list")
    log("exports: %d files, all five result CSVs listed" % len(files))

    page.click("map-pca")
    pca_path = wait_for_map(page, "pca_map", chat_map, "the PCA map")
    page.wait_for("(%s) >= %d" % (WARD_SHAPES_JS, SMALL_WARDS), "%d ward shapes in the PCA map" % SMALL_WARDS)
    variable = page.evaluate("document.getElementById('variable-select').value")
    page.click("map-variable")
    variable_path = wait_for_map(page, "variable_map", pca_path, "the map of %s" % variable)
    page.wait_for("(%s) >= %d" % (WARD_SHAPES_JS, SMALL_WARDS), "%d ward shapes in the variable map" % SMALL_WARDS)
    recorder.check("PCA and variable maps")
    log("PCA map %s; variable map of %s %s" % (pca_path, variable, variable_path))

    for format_name, button, content_type in (("html", "report-html", "text/html"),
                                              ("export", "report-zip", "application/zip")):
        page.click(button)
        href = page.wait_for("(() => { const a = document.getElementById('report-link-%s');"
                             " return a ? a.getAttribute('href') : null; })()" % format_name,
                             "the %s report link" % format_name, timeout=60.0)
        fetched = page.evaluate("fetch(%s, { credentials: 'same-origin' }).then(r => r.arrayBuffer().then(b =>"
                                " ({ status: r.status, type: r.headers.get('Content-Type'), bytes: b.byteLength })))"
                                % json.dumps(href), timeout=30.0)
        if fetched["status"] != 200 or not (fetched["type"] or "").startswith(content_type) or fetched["bytes"] == 0:
            raise TestFailure("GET %s (the %s report link) gave %r, expected 200 %s with a body"
                              % (href, format_name, fetched, content_type))
        log("report %s: %s, %d bytes of %s" % (format_name, href, fetched["bytes"], fetched["type"]))
    recorder.check("reports")

    # A reload restores the session from GET /session_status: the maps work without a new upload.
    session_before = page.evaluate("window.chatmrptUi.state.sessionId")
    page.navigate(url, UI_READY, UI_PAGE)
    restored = page.evaluate("({ id: window.chatmrptUi.state.sessionId,"
                             " analysed: window.chatmrptUi.state.analysisComplete })")
    if restored["id"] != session_before or not restored["analysed"]:
        raise TestFailure("after a reload the page restored %r, expected session %s with its analysis"
                          % (restored, session_before))
    page.click("map-vulnerability")
    wait_for_map(page, "vulnerability_map", None, "the vulnerability map after a reload")
    page.wait_for("(%s) >= %d" % (WARD_SHAPES_JS, SMALL_WARDS), "%d ward shapes after a reload" % SMALL_WARDS)
    recorder.check("reload")
    log("reload: session %s restored with its analysis" % session_before)

    page.click("clear-session")
    page.wait_for("document.body.dataset.state === 'idle' && document.getElementById('data-summary').dataset.ready === '0'",
                  "the page to clear the session")
    status = page.evaluate("fetch('/session_status', { credentials: 'same-origin' }).then(r => r.json())")
    if status.get("session_id") or status.get("csv_loaded") or status.get("analysis_complete"):
        raise TestFailure("after Clear session, /session_status still reports data: %r" % status)
    recorder.check("clear session")
    log("session cleared")


def chunked_run(page, url, data_dir, recorder):
    csv_path, zip_path = data_dir
    zip_size = os.path.getsize(zip_path)
    csv_size = os.path.getsize(csv_path)
    if zip_size <= CHUNK_THRESHOLD:
        raise TestFailure("gendata --detail %d made a %d byte zip: not over 5 MB, so nothing would be chunked"
                          % (BIG_DETAIL, zip_size))
    page.navigate(url, UI_READY, UI_PAGE)  # a fresh page: fresh counters; the session is restored from the server
    recorder.check("page reload")
    summary = upload(page, csv_path, zip_path, BIG_WARDS)
    expected_chunks = max(1, math.ceil(csv_size / CHUNK_SIZE)) + max(1, math.ceil(zip_size / CHUNK_SIZE))
    counters = page.evaluate("Object.assign({ path: document.body.dataset.uploadPath,"
                             " sent: document.getElementById('upload-progress').dataset.chunksSent },"
                             " window.chatmrptUi.counters)")
    if counters["path"] != "chunked" or counters["whole_uploads"] != 0:
        raise TestFailure("a %d byte shapefile was not sent in chunks: %r" % (zip_size, counters))
    if counters["chunk_requests"] != expected_chunks or counters["sent"] != str(expected_chunks):
        raise TestFailure("expected %d chunk requests for %d + %d bytes, the page counted %r"
                          % (expected_chunks, csv_size, zip_size, counters))
    if counters["finalize_requests"] != 1:
        raise TestFailure("expected one /upload/finalize, the page counted %r" % counters)
    recorder.check("chunked upload")
    log("chunked upload: %d + %d bytes in %d chunks; %s rows, %s features"
        % (csv_size, zip_size, expected_chunks, summary["rows"], summary["features"]))

    counts, path, shapes = run_analysis_and_map(page, BIG_WARDS)
    recorder.check("analysis of the chunked upload")
    log("chunked data analysed: high/medium/low %s; vulnerability map with %d ward shapes" % (counts, shapes))






def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the CMake build tree with the binaries")
    parser.add_argument("--chromium", help="the browser (default: /usr/bin/chromium)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on the whole run, seconds")
    parser.add_argument("--seed", type=int, default=11, help="gendata seed")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs, data) for debugging")
    parser.add_argument("--screenshot", help="save a PNG of the page at the end (or at the failure) here")
    args = parser.parse_args()

    build_dir = os.path.abspath(args.build_dir)
    for binary in ("stickyproxy", "stickyproxy-backend", "stickyproxy-gendata"):
        if not os.access(os.path.join(build_dir, binary), os.X_OK):
            print("ui_flow_test: %s/%s is missing: build it first" % (build_dir, binary), file=sys.stderr)
            return 2
    chromium = find_chromium(args.chromium)
    if not chromium:
        print("ui_flow_test: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2

    deadline, work_dir, processes = begin_run(args.timeout, "sp-ui-")
    devtools = None
    browser = None
    page = None
    failed = True
    try:
        small = generate_data(build_dir, os.path.join(work_dir, "data-small"), args.seed, SMALL_WARDS,
                              timeout=deadline.cap(60.0))
        big = generate_data(build_dir, os.path.join(work_dir, "data-big"), args.seed + 1, BIG_WARDS,
                            detail=BIG_DETAIL, timeout=deadline.cap(60.0))

        port, _, _, proxy, _ = start_proxy(build_dir, work_dir, processes, deadline, "stickyproxy-backend")
        url = "http://127.0.0.1:%d/" % port
        log("proxy on %s (pid %d), workers on Unix sockets in %s" % (url, proxy.pid, work_dir))

        browser, devtools, recorder, page = open_page(processes, chromium, work_dir, deadline)
        devtools.call("DOM.enable", session_id=page.session_id)

        first_run(page, url, small, recorder)
        chunked_run(page, url, big, recorder)
        devtools.pump(0.2)
        recorder.check("the whole run")
        if args.screenshot:
            save_screenshot(page, args.screenshot)
        failed = False
        log("PASS in %.1f s" % (args.timeout - deadline.remaining()))
        return 0
    except TestFailure as failure:
        log("FAIL: %s" % failure)
        if page is not None and args.screenshot:
            save_screenshot(page, args.screenshot)
        for name in ("stickyproxy.log", "chromium.log"):
            path = os.path.join(work_dir, name)
            if os.path.exists(path):
                print(tail(path, 25), file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as error:
        log("FAIL: %s timed out" % " ".join(error.cmd))
        return 1
    finally:
        tear_down(processes, browser, devtools, work_dir,
                  args.keep_temp or (failed and os.environ.get("UI_FLOW_KEEP_TEMP")))


if __name__ == "__main__":
    sys.exit(main())
