#!/usr/bin/env python3
"""TLS as a scanner sees it: stickyproxy with its default [tls] settings, scanned by Debian's
testssl.sh (and sslscan when installed), on demand.

    sh deploy/install-deps.sh --bench && python3 tests/load/tls_scan.py --build-dir build [--keep-temp]

Makes a CA and a P-256 certificate for localhost with the `openssl` command, starts the proxy with
four test-worker processes and [tls] on a free loopback port, then runs `testssl --quiet --color 0
--warnings off --jsonfile ...` against 127.0.0.1 with SNI localhost. Prints every finding rated
LOW or worse (INFO and OK are the rest) and a one-line count per severity; PASS when no TLS finding
is rated above LOW. testssl also rates the test worker's own HTTP headers (X-Frame-Options, CSP):
those are the app's, marked "app" and not counted. Exit 0 on PASS, 1 on FAIL, 2 when a tool or
binary is missing.
Loopback only; every process is stopped by its pid. Python standard library only.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "browser"))

from browser_support import (TestFailure, begin_run, free_tcp_port, log, start_proxy, tail, tear_down)  # noqa: E402

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK"]


def make_certificate(work_dir):
    """A CA and a certificate for localhost/127.0.0.1 it signed; returns (chain, key, ca)."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    ca_key, ca = os.path.join(work_dir, "ca.key"), os.path.join(work_dir, "ca.pem")
    key, csr, leaf = (os.path.join(work_dir, name) for name in ("site.key", "site.csr", "site.leaf"))
    ext = os.path.join(work_dir, "site.ext")
    with open(ext, "w") as out:
        # What a public CA's certificate carries, so that testssl judges the TLS settings, not the
        # test certificate: a revocation URI (never fetched: no --phone-out) and a year of validity.
        out.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                  "crlDistributionPoints=URI:http://127.0.0.1/stickyproxy-scan.crl\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "400",
            "-subj", "/CN=stickyproxy-scan-ca", "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "365",
            "-extfile", ext, "-out", leaf)
    chain = os.path.join(work_dir, "site.pem")
    with open(chain, "w") as out, open(leaf) as first, open(ca) as second:
        out.write(first.read() + second.read())
    return chain, key, ca


def run_testssl(tls_port, work_dir, ca, timeout):
    report = os.path.join(work_dir, "testssl.json")
    command = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--sneaky", "--ip", "127.0.0.1",
               "--add-ca", ca,
               "--jsonfile", report, "localhost:%d" % tls_port]
    log("running: " + " ".join(command))
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    with open(report) as source:
        return json.load(source)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    for tool in ("openssl", "testssl"):
        if shutil.which(tool) is None:
            print("%s is not installed (Debian: apt-get install %s)" % (tool, "testssl.sh" if tool == "testssl" else tool))
            return 2
    for binary in ("stickyproxy", "test-worker"):
        if not os.path.exists(os.path.join(build_dir, binary)):
            print("%s is missing: build it first" % os.path.join(build_dir, binary))
            return 2

    deadline, work_dir, processes = begin_run(args.timeout, "stickyproxy-tls-scan")
    ok = False
    try:
        chain, key, ca = make_certificate(work_dir)
        tls_port = free_tcp_port()
        _, _, _, proxy, proxy_log = start_proxy(
            build_dir, work_dir, processes, deadline, "test-worker", workers=4,
            overrides={"tls.listen": "127.0.0.1:%d" % tls_port, "tls.certificate": chain, "tls.key": key,
                       "tls.hsts": "365d"})
        findings = run_testssl(tls_port, work_dir, ca, max(60.0, args.timeout - 60))
        counts = collections.Counter(item.get("severity", "INFO") for item in findings)
        # testssl also rates the worker's own response headers (X-Frame-Options, CSP, ...): those
        # belong to the app behind the proxy, and are listed apart from the TLS findings.
        app_ids = {"security_headers", "X-Frame-Options", "X-Content-Type-Options", "Content-Security-Policy"}
        noted = [item for item in findings if item.get("severity") in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN")]
        serious = [item for item in noted if item.get("severity") in ("CRITICAL", "HIGH", "MEDIUM")
                   and item.get("id") not in app_ids]
        print("\ntestssl.sh against stickyproxy's default [tls] (P-256 certificate from a test CA, hsts on):")
        for item in noted:
            where = "app " if item.get("id") in app_ids else "tls "
            print("  %s%-8s %-28s %s" % (where, item["severity"], item.get("id", "?"), item.get("finding", "")))
        protocols = [item for item in findings if item.get("id") in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2",
                                                                      "TLS1_3")]
        for item in protocols:
            print("  protocol %-7s %s" % (item["id"], item.get("finding", "")))
        print("  findings by severity: " + ", ".join("%s %d" % (name, counts[name]) for name in SEVERITIES
                                                     if counts[name]))
        ok = not serious and proxy.poll() is None
        if proxy.poll() is not None:
            print("the proxy exited during the scan:\n" + tail(proxy_log))
        print("PASS" if ok else "FAIL")
    except (TestFailure, subprocess.SubprocessError, OSError, ValueError) as error:
        print("FAIL: %s" % error)
    finally:
        tear_down(processes, None, None, work_dir, args.keep_temp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
