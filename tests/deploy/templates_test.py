#!/usr/bin/env python3
"""The deployment templates in deploy/ checked with what Debian ships, since no cloud or cluster
is reachable here:

    python3 tests/deploy/templates_test.py --build-dir build

- deploy/kubernetes/stickyproxy.yaml: yamllint; then, parsed, every object a Deployment needs
  is there and they fit together (the Service selects the pods, the probes and the Ingress use
  named ports the container has, the ServiceMonitor scrapes the metrics port, every mount has its
  volume), and the ConfigMap's prod.conf passes `stickyproxy -t` and listens where the container
  ports say; `kubectl apply --dry-run=client` too when a kubectl that works offline is there.
- deploy/kubernetes/Dockerfile: its entry point runs the config path the Deployment mounts.
- deploy/aws/: the JSON parses; the target group health-checks /ping on the proxy's port with
  lb_cookie stickiness; the launch template's user data is deploy/aws/user-data.sh exactly (and
  `sh -n` accepts it); CloudFront sends every dynamic route of the app (and the default) to the
  origin uncached with all cookies.
Exit 0 when every check holds, 1 otherwise.
"""

import argparse
import base64
import configparser
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.join(HERE, os.pardir, os.pardir, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes", "stickyproxy.yaml")
AWS = os.path.join(DEPLOY, "aws")
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS managed cache policy
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # AWS managed origin request policy
# The app's routes whose answers depend on the session (backend/backend_app.cpp's route table).
DYNAMIC_ROUTES = ["/upload_both_files", "/upload/chunk", "/upload/finalize", "/run_analysis", "/get_visualization",
                  "/navigate_composite_map", "/serve_viz_file/x/y.html", "/send_message_streaming",
                  "/export/list/x", "/export/download/x/y.csv", "/session_status"]

failures = []


def check(holds, message):
    if not holds:
        failures.append(message)
    return holds


def pattern_matches(pattern, path):
    """CloudFront path patterns: * matches any run of characters."""
    import fnmatch
    return fnmatch.fnmatchcase(path, pattern)


def kubernetes(build_dir):
    lint = subprocess.run(["yamllint", "-d", "{extends: default, rules: {line-length: {max: 120}}}", K8S],
                          capture_output=True, text=True)
    check(lint.returncode == 0, "yamllint %s:\n%s" % (K8S, lint.stdout + lint.stderr))
    with open(K8S) as source:
        objects = {document["kind"]: document for document in yaml.safe_load_all(source) if document}
    wanted = {"ConfigMap", "Secret", "Deployment", "Service", "Ingress", "ServiceMonitor", "NetworkPolicy"}
    if not check(set(objects) == wanted, "kinds %s, expected %s" % (sorted(objects), sorted(wanted))):
        return
    deployment = objects["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    check(deployment["selector"]["matchLabels"].items() <= labels.items(), "the Deployment selects other pods")
    check(objects["Service"]["spec"]["selector"].items() <= labels.items(), "the Service selects other pods")
    check(objects["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items()
          <= objects["Service"]["metadata"]["labels"].items(), "the ServiceMonitor selects another Service")
    container = deployment["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    service_ports = {port["name"]: port for port in objects["Service"]["spec"]["ports"]}
    check(all(port["targetPort"] in ports for port in service_ports.values()), "a Service port targets no container port")
    check(container["readinessProbe"]["httpGet"]["port"] in ports, "the readiness probe's port is not the container's")
    backend = objects["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    check(backend["name"] == objects["Service"]["metadata"]["name"] and backend["port"]["name"] in service_ports,
          "the Ingress points at no Service port")
    check(objects["Ingress"]["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/affinity") == "cookie",
          "the Ingress has no cookie affinity")
    check(objects["ServiceMonitor"]["spec"]["endpoints"][0]["port"] in service_ports, "the ServiceMonitor port")
    volumes = {volume["name"] for volume in deployment["template"]["spec"]["volumes"]}
    mounts = container["volumeMounts"]
    check(all(mount["name"] in volumes for mount in mounts), "a volume mount without its volume")
    config_path = container["args"][container["args"].index("-c") + 1]
    check(any(mount["mountPath"] == config_path for mount in mounts), "the config %s is not mounted" % config_path)

    # The config itself: what `stickyproxy -t` says, and the ports it listens on.
    conf_text = objects["ConfigMap"]["data"]["prod.conf"]
    parsed = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#",))
    parsed.read_string(conf_text)
    check(int(parsed["proxy"]["listen"].rsplit(":", 1)[1]) == ports["http"], "listen is not the http port")
    check(int(parsed["proxy"]["metrics_listen"].rsplit(":", 1)[1]) == ports["metrics"], "metrics_listen is not the metrics port")
    check(container["readinessProbe"]["httpGet"]["path"] == parsed["health_check"]["path"],
          "the readiness probe asks another path than the health checks")
    secret_mount = next(mount["mountPath"] for mount in mounts if mount["name"] == "secret")
    secret_key = list(objects["Secret"]["stringData"])[0]
    check(parsed["routing"]["secret_file"] == os.path.join(secret_mount, secret_key),
          "routing.secret_file is not the mounted Secret")
    with tempfile.TemporaryDirectory(prefix="sp-templates-") as scratch:
        secret = os.path.join(scratch, "routing-secret")
        with open(secret, "w") as out:
            out.write("ab" * 32 + "\n")
        os.chmod(secret, 0o600)
        conf = os.path.join(scratch, "prod.conf")
        with open(conf, "w") as out:
            out.write(conf_text.replace(parsed["routing"]["secret_file"], secret))
        tested = subprocess.run([os.path.join(build_dir, "stickyproxy"), "-t", "-c", conf], capture_output=True, text=True)
        check(tested.returncode == 0, "stickyproxy -t on the ConfigMap's prod.conf: " + tested.stdout + tested.stderr)

    with open(os.path.join(DEPLOY, "kubernetes", "Dockerfile")) as source:
        entry = [line for line in source if line.startswith("ENTRYPOINT")][0]
    check(json.loads(entry.split(None, 1)[1])[-1] == config_path, "the image runs another config than the one mounted")

    # kubectl's client-side dry run still asks a cluster for its API: only where one is configured.
    try:
        context = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        print("kubectl: not installed (Debian 12 does not ship it); the structural checks stand in")
        return
    if context.returncode != 0:
        print("kubectl: no cluster configured; the structural checks stand in for its dry run")
        return
    dry = subprocess.run(["kubectl", "apply", "--dry-run=client", "-f", K8S], capture_output=True, text=True, timeout=60)
    check(dry.returncode == 0, "kubectl apply --dry-run=client: " + dry.stdout + dry.stderr)


def aws(build_dir):
    def load(name):
        with open(os.path.join(AWS, name)) as source:
            return json.load(source)
    group = load("target-group.json")
    attributes = {item["Key"]: item["Value"] for item in load("target-group-attributes.json")["Attributes"]}
    check(group["HealthCheckPath"] == "/ping" and group["Port"] == 8080, "the target group's health check or port")
    check(attributes.get("stickiness.enabled") == "true" and attributes.get("stickiness.type") == "lb_cookie",
          "the target group has no lb_cookie stickiness")
    template = load("launch-template.json")
    with open(os.path.join(AWS, "user-data.sh"), "rb") as source:
        script = source.read()
    check(base64.b64decode(template["LaunchTemplateData"]["UserData"]) == script,
          "the launch template's UserData is not deploy/aws/user-data.sh (re-encode it)")
    check(subprocess.run(["sh", "-n", os.path.join(AWS, "user-data.sh")]).returncode == 0, "user-data.sh: sh -n")
    check(b"apt-get install" in script and b"stickyproxy" in script and b"systemctl enable --now" in script,
          "user-data.sh does not install and start the package")
    cloudfront = load("cloudfront-behaviors.json")
    behaviors = cloudfront["CacheBehaviors"]["Items"]
    check(cloudfront["CacheBehaviors"]["Quantity"] == len(behaviors), "CacheBehaviors' Quantity")
    for route in DYNAMIC_ROUTES:
        matched = next((b for b in behaviors if pattern_matches(b["PathPattern"], route)), cloudfront["DefaultCacheBehavior"])
        check(matched["CachePolicyId"] == CACHING_DISABLED and matched["OriginRequestPolicyId"] == ALL_VIEWER
              and "POST" in matched["AllowedMethods"]["Items"], "CloudFront may cache or strip %s" % route)
    # The app's own config listens where the target group sends.
    parsed = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#",))
    parsed.read(os.path.join(HERE, os.pardir, os.pardir, "conf", "prod.conf"))
    check(int(parsed["proxy"]["listen"].rsplit(":", 1)[1]) == group["Port"], "prod.conf listens elsewhere than the target group")
    del build_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    kubernetes(build_dir)
    aws(build_dir)
    for failure in failures:
        print("templates_test: FAIL: " + failure)
    print("templates_test: %s" % ("PASS" if not failures else "FAIL (%d)" % len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
