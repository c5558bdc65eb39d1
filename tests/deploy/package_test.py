#!/usr/bin/env python3
"""The Debian package from install to purge, on this machine, as root:

    python3 tests/deploy/package_test.py --build-dir build

Builds build/'s package with cpack (into a temp dir), checks it with lintian (no error) and its
unit with `systemd-analyze verify`, installs it with `apt-get install ./stickyproxy_*.deb`, checks
the layout, the system user and `stickyproxy -t -c /etc/stickyproxy/prod.conf`, starts the proxy
as the unit starts it (as the stickyproxy user, umask 0077, /run/stickyproxy made for it: what
RuntimeDirectory= does; the CI machine runs no systemd), waits for its workers, serves the app's
page on :8080 and /metrics on 127.0.0.1:9090, then installs the package again over itself three
times (upgrades: the postinst runs `stickyproxy upgrade`) while 8 keep-alive connections send
`GET /ping` back to back: after each a new process must serve with the same four worker
processes, and no request may fail. It stops the last one by its pid with SIGTERM, then purges
the package and checks that nothing of it is left: files, directories, user and group.

Exits 77 (skipped) when not root or when a stickyproxy package is already installed (it would
not touch it). Modifies the machine's package state: ctest runs it alone (RUN_SERIAL). The
stickyproxy account that deploy/install-deps.sh makes for conf/prod.conf goes with the purge, as
the package's own would; the test makes it again at the end when it was there before.
"""

import argparse
import glob
import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "load"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "browser"))

from browser_support import become_subreaper  # noqa: E402
from upgrade_under_load import Hammer, process_gone, reap  # noqa: E402

SKIP = 77
UPGRADES = 3
USER = "stickyproxy"
CONF = "/etc/stickyproxy/prod.conf"
UNIT = "/lib/systemd/system/stickyproxy.service"
BINARIES = ["/usr/bin/stickyproxy", "/usr/bin/stickyproxy-backend", "/usr/bin/stickyproxy-gendata",
            "/usr/bin/stickyproxy-load"]
FILES = BINARIES + [CONF, UNIT, "/usr/share/doc/stickyproxy/README.md", "/usr/share/doc/stickyproxy/copyright",
                    "/usr/share/doc/stickyproxy/changelog.gz", "/usr/share/doc/stickyproxy/conf-README.md",
                    "/usr/share/stickyproxy/metrics/alerts.yml", "/usr/share/stickyproxy/metrics/grafana-dashboard.json"]
LEFT_BEHIND = FILES + ["/etc/stickyproxy", "/var/lib/stickyproxy", "/run/stickyproxy", "/usr/share/doc/stickyproxy",
                       "/usr/share/stickyproxy"]


class Failure(Exception):
    pass


def log(message):
    print("package_test: %s" % message, flush=True)


def run(argv, timeout=300, check=True, env=None):
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise Failure("%s exited %d:\n%s%s" % (" ".join(argv), done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
    return done


def installed():
    done = run(["dpkg-query", "-W", "-f=${Status}", "stickyproxy"], check=False)
    return done.returncode == 0 and "installed" in done.stdout and "not-installed" not in done.stdout


def account_exists():
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def wait_for(condition, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise Failure("%s did not happen within %.0f s" % (what, seconds))


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except OSError:
        return None, b""


def build_package(build_dir, out_dir):
    config = os.path.join(build_dir, "CPackConfig.cmake")
    if not os.path.exists(config):
        raise Failure("no %s: configure the build first" % config)
    run(["cpack", "--config", config, "-B", out_dir], timeout=600)
    debs = glob.glob(os.path.join(out_dir, "stickyproxy_*.deb"))
    if len(debs) != 1:
        raise Failure("cpack made %r, expected one stickyproxy_*.deb" % debs)
    return debs[0]


def check_package(deb):
    if shutil.which("lintian"):
        done = run(["lintian", "--fail-on", "error", "--suppress-tags", "bad-distribution-in-changes-file", deb],
                   check=False, timeout=600)
        print(done.stdout + done.stderr)
        if done.returncode != 0:
            raise Failure("lintian reports errors on %s" % os.path.basename(deb))
    else:
        raise Failure("lintian is missing (sh deploy/install-deps.sh installs it)")
    control = run(["dpkg-deb", "--info", deb]).stdout
    for needed in ("Depends:", "adduser", "libuv1"):
        if needed not in control:
            raise Failure("the control file lacks %r:\n%s" % (needed, control))
    listed = run(["dpkg-deb", "--info", deb, "conffiles"]).stdout.split()
    if listed != [CONF]:
        raise Failure("conffiles %r, expected [%r]" % (listed, CONF))


def start_as_unit():
    """The proxy as the unit starts it; returns the Popen."""
    os.makedirs("/run/stickyproxy", exist_ok=True)
    user = pwd.getpwnam(USER)
    os.chown("/run/stickyproxy", user.pw_uid, user.pw_gid)
    os.chmod("/run/stickyproxy", 0o750)
    run(["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "--", "/usr/bin/stickyproxy", "-t", "-c", CONF])
    log_file = open(os.path.join(tempfile.gettempdir(), "stickyproxy-package-test.log"), "wb")
    proxy = subprocess.Popen(["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "--no-new-privs", "--",
                              "sh", "-c", "umask 0077 && exec /usr/bin/stickyproxy -c " + CONF],
                             stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True)
    log_file.close()
    return proxy, log_file.name


def serve(proxy, proxy_log):
    def ready():
        if proxy.poll() is not None:
            raise Failure("the proxy exited (%s):\n%s" % (proxy.returncode, open(proxy_log).read()[-3000:]))
        status, body = fetch("http://127.0.0.1:9090/status.json")
        return status == 200 and body.count(b'"up":true') == 4
    wait_for(ready, 60, "four workers up in /status.json")
    status, page = fetch("http://127.0.0.1:8080/")
    if status != 200 or b"<html" not in page.lower():
        raise Failure("GET / through the installed proxy answered %r" % status)
    status, metrics = fetch("http://127.0.0.1:9090/metrics")
    if status != 200 or b"stickyproxy_worker_up" not in metrics:
        raise Failure("GET /metrics answered %r" % status)
    state = os.stat("/var/lib/stickyproxy")
    if state.st_uid != pwd.getpwnam(USER).pw_uid:
        raise Failure("/var/lib/stickyproxy is not the service user's")
    log("the installed proxy served the page and /metrics with four workers up")


def worker_pids():
    status, body = fetch("http://127.0.0.1:9090/status.json")
    if status != 200:
        raise Failure("GET /status.json answered %r" % status)
    return {worker["name"]: worker["pid"] for worker in json.loads(body.decode("utf-8"))["workers"]}


def upgrade_in_place(deb, proxy, proxy_log):
    """Installs `deb` over itself while `proxy` runs: the postinst must hand over to a new process
    that keeps the workers. Returns the new process's pid."""
    before = worker_pids()
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "--reinstall", deb],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    try:
        proxy.wait(timeout=60)  # the old process finishes its requests and exits by itself
    except subprocess.TimeoutExpired:
        raise Failure("the proxy running before the upgrade did not exit")
    with open(proxy_log) as source:
        found = re.findall(r"upgrade: pid (\d+) serves now", source.read())
    successor = int(found[-1]) if found else 0
    if successor == 0 or successor == proxy.pid:
        raise Failure("the package upgrade did not hand over:\n%s" % open(proxy_log).read()[-3000:])
    after = worker_pids()
    if after != before:
        raise Failure("the workers changed over the upgrade: %r -> %r" % (before, after))
    status, page = fetch("http://127.0.0.1:8080/")
    if status != 200:
        raise Failure("GET / after the upgrade answered %r" % status)
    log("the package upgrade handed over to pid %d; the four workers kept their pids" % successor)
    return successor


class Adopted:
    """A proxy process that is not our child (started by its predecessor), waited for like a Popen."""

    def __init__(self, pid):
        self.pid = pid

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while not process_gone(self.pid):
            reap()
            if time.monotonic() >= end:
                raise subprocess.TimeoutExpired("pid %d" % self.pid, timeout)
            time.sleep(0.1)
        reap()


def stop_pid(pid):
    """SIGTERM to `pid` (not our child), waited for until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    wait_for(lambda: reap() or process_gone(pid), 30, "pid %d to stop after SIGTERM" % pid)


def stop(proxy):
    if proxy.poll() is None:
        os.kill(proxy.pid, signal.SIGTERM)
        try:
            proxy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proxy.pid, signal.SIGKILL)
            proxy.wait(timeout=10)
            raise Failure("the proxy did not stop within 30 s of SIGTERM")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    if os.geteuid() != 0:
        log("SKIP: needs root (it installs a package)")
        return SKIP
    if installed():
        log("SKIP: a stickyproxy package is already installed here; not touching it")
        return SKIP
    become_subreaper()  # successors outlive the proxies that started them: ours to reap
    out_dir = tempfile.mkdtemp(prefix="sp-package-")
    proxy = None
    successor = None
    account_before = account_exists()
    try:
        deb = build_package(os.path.abspath(args.build_dir), out_dir)
        log("built %s (%d KiB)" % (os.path.basename(deb), os.path.getsize(deb) // 1024))
        check_package(deb)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", deb],
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        missing = [path for path in FILES if not os.path.exists(path)]
        if missing:
            raise Failure("installed, but missing: %s" % missing)
        pwd.getpwnam(USER)
        grp.getgrnam(USER)
        verify = run(["systemd-analyze", "verify", UNIT], check=False)
        if verify.returncode != 0 or verify.stderr.strip():
            raise Failure("systemd-analyze verify %s: %s%s" % (UNIT, verify.stdout, verify.stderr))
        log("installed: the layout, the user and the unit check out")
        proxy, proxy_log = start_as_unit()
        serve(proxy, proxy_log)
        hammer = Hammer(8080, 8)
        hammer.start()
        running = proxy
        for number in range(1, UPGRADES + 1):
            successor = upgrade_in_place(deb, running, proxy_log)
            running = Adopted(successor)
        hammer.stop()
        log("under %d upgrades: %d requests answered, %d failed" % (UPGRADES, hammer.ok, len(hammer.failures)))
        if hammer.ok == 0 or hammer.failures:
            raise Failure("requests failed during the upgrades: %s" % "; ".join(hammer.failures[:5]))
        stop_pid(successor)
        successor = None
        run(["apt-get", "purge", "-y", "-qq", "stickyproxy"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        left = [path for path in LEFT_BEHIND if os.path.lexists(path)]
        if account_exists():
            left.append("user " + USER)
        try:
            grp.getgrnam(USER)
            left.append("group " + USER)
        except KeyError:
            pass
        if left or installed():
            raise Failure("after purge, left behind: %s" % left)
        log("PASS: installed, served, purged; nothing left behind")
        return 0
    except (Failure, OSError, KeyError, subprocess.SubprocessError) as failure:
        log("FAIL: %s" % failure)
        return 1
    finally:
        if proxy is not None:
            try:
                stop(proxy)
            except Failure:
                pass
        if successor is not None:
            try:
                stop_pid(successor)
            except Failure:
                pass
        if installed():
            run(["apt-get", "purge", "-y", "-qq", "stickyproxy"], check=False,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        shutil.rmtree(out_dir, ignore_errors=True)
        if account_before and not account_exists():
            run(["adduser", "--system", "--group", "--no-create-home", "--quiet", USER], check=False)


if __name__ == "__main__":
    sys.exit(main())
