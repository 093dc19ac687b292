#!/usr/bin/env python3
"""Checks deploy/prometheus and deploy/grafana against a real Prometheus (issue 15 item 5).

1. Installs Debian's `prometheus` package when `prometheus` or `promtool` is missing (CI runs as
   root; `apt-get` is the ordinary client).
2. `promtool check rules` and `promtool test rules` (a firing and a quiet case per alert).
3. Starts two mocks and a gateway binary with three accounts: one on a closed port (priority
   first: every session fails over from it), one whose upgrades are answered 429 (cooldowns),
   one healthy; `redis_url` on a closed port (store errors, the breaker opens). Prometheus
   scrapes the gateway's admin listener every second while WebSocket sessions (wsv2-loadgen)
   and POST turns (`store: true`) run.
4. Once the gateway has counted a failover, a cooldown and a breaker opening and Prometheus has
   scraped them, evaluates every query of every panel of deploy/grafana/wsv2-gateway.json
   through Prometheus's HTTP API (`$__rate_interval` as 1m): an invalid query or an empty
   result fails, and no query may hide emptiness with `or vector(0)`.

  scripts/prometheus-check.py [--bin target/debug]

Prints one line per step and `prometheus-check: N passed, 0 failed`. Standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-promcheck"
UPSTREAM_KEY = "sk-promcheck-upstream"
RATE_INTERVAL = "1m"


def step(text):
    print(f"prometheus-check: {text}", flush=True)


def ensure_prometheus():
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    step("installing Debian's prometheus package")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, condition, timeout=30.0):
    """Polls `condition` (a check of state, not a delay) until it is true or `timeout` passes"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def line_in(path, pattern):
    try:
        with open(path, "rb") as f:
            return re.search(pattern, f.read())
    except FileNotFoundError:
        return None


def http_get(host, port, path):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    except OSError:
        return None, ""
    finally:
        conn.close()


def post_turns(host, port, n):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    for i in range(n):
        body = json.dumps({"model": "gpt-5", "input": f"turn {i}", "stream": False, "store": True})
        conn.request("POST", "/v1/responses", body=body, headers=headers)
        conn.getresponse().read()
    conn.close()


def series_value(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def query(prom_port, expr):
    status, body = http_get(
        "127.0.0.1", prom_port, "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )
    if status is None:
        return None, "no answer"
    answer = json.loads(body)
    if answer.get("status") != "success":
        return None, answer.get("error", body)
    return answer["data"]["result"], None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "debug"))
    args = parser.parse_args()
    passed = 0
    ensure_prometheus()

    rules = os.path.join(ROOT, "deploy", "prometheus", "wsv2-alerts.yml")
    subprocess.run(["promtool", "check", "rules", rules], check=True)
    subprocess.run(
        ["promtool", "test", "rules", "wsv2-alerts.test.yml"],
        check=True,
        cwd=os.path.dirname(rules),
    )
    passed += 2
    step("promtool check rules and test rules passed")

    dashboard = json.load(open(os.path.join(ROOT, "deploy", "grafana", "wsv2-gateway.json")))
    exprs = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    hiding = [title for title, expr in exprs if "vector(0)" in expr.replace(" ", "")]
    if hiding:
        raise SystemExit(f"panels hide emptiness with or vector(0): {hiding}")

    work = tempfile.mkdtemp(prefix="wsv2-promcheck-")
    procs = []
    try:
        mocks = {}
        for name, extra in [("healthy", []), ("limited", ["--upgrade-status", "429"])]:
            log = os.path.join(work, f"mock-{name}.log")
            procs.append(
                subprocess.Popen(
                    [os.path.join(args.bin, "wsv2-mock-upstream"), "--api-key", UPSTREAM_KEY]
                    + extra,
                    stdout=open(log, "wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            mocks[name] = wait_for(
                f"mock {name}", lambda: line_in(log, rb"listening on (\S+)")
            ).group(1).decode()
        config = os.path.join(work, "gateway.toml")
        with open(config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:0"\nadmin_listen = "127.0.0.1:0"\n'
                f'redis_url = "redis://127.0.0.1:{closed_port()}"\n\n'
                f'[[client_keys]]\nkey = "{KEY}"\nname = "promcheck"\n\n'
                f'[[accounts]]\nid = 1\nname = "dead"\ntoken = "{UPSTREAM_KEY}"\n'
                f'base_url = "ws://127.0.0.1:{closed_port()}/v1/responses"\npriority = 10\n\n'
                f'[[accounts]]\nid = 2\nname = "limited"\ntoken = "{UPSTREAM_KEY}"\n'
                f'base_url = "{mocks["limited"]}"\npriority = 5\n\n'
                f'[[accounts]]\nid = 3\nname = "healthy"\ntoken = "{UPSTREAM_KEY}"\n'
                f'base_url = "{mocks["healthy"]}"\n\n'
                f'[store]\nstore_op_timeout = "200ms"\n'
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSV2_")}
        env["RUST_LOG"] = "warn"
        log = os.path.join(work, "gateway.log")
        procs.append(
            subprocess.Popen(
                [os.path.join(args.bin, "wsv2-gateway"), "serve", "--config", config],
                stdout=open(log, "wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        ws = wait_for("gateway", lambda: line_in(log, rb"listening on (ws://([0-9.]+):(\d+)\S*)"))
        ws_url, host, port = ws.group(1).decode(), ws.group(2).decode(), int(ws.group(3))
        admin = line_in(log, rb"admin listening on http://([0-9.]+):(\d+)")
        admin_host, admin_port = admin.group(1).decode(), int(admin.group(2))

        prom_port = closed_port()
        prom_config = os.path.join(work, "prometheus.yml")
        with open(prom_config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                f"rule_files:\n  - {rules}\n"
                "scrape_configs:\n  - job_name: wsv2\n"
                f"    static_configs:\n      - targets: ['{admin_host}:{admin_port}']\n"
            )
        procs.append(
            subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=open(os.path.join(work, "prometheus.log"), "wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(
            "Prometheus ready",
            lambda: http_get("127.0.0.1", prom_port, "/-/ready")[0] == 200,
        )
        step(f"Prometheus scrapes the admin listener {admin_host}:{admin_port}")

        # The workload: WebSocket sessions and POST turns, until a failover, a cooldown and a
        # breaker opening are counted.
        loadgen = [
            os.path.join(args.bin, "wsv2-loadgen"),
            "--api-key", KEY, "--target", f"gw={ws_url}",
            "--sessions", "4", "--turns", "3", "--warmup", "0", "--rounds", "1",
        ]

        def counted():
            # Some turns may fail while accounts cool down: the counts below are what matters.
            subprocess.run(loadgen, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
            post_turns(host, port, 5)
            _, text = http_get(admin_host, admin_port, "/metrics")
            return all(
                series_value(text, name) > 0
                for name in [
                    "wsv2_failovers_total",
                    "wsv2_cooldowns_total",
                    "wsv2_store_breaker_opened_total",
                    "wsv2_tokens_total",
                ]
            )

        wait_for("a failover, a cooldown and a breaker opening", counted, timeout=60)
        # Prometheus has them once its own last scrape shows them, plus two more samples for rates.
        wait_for(
            "Prometheus to scrape the workload",
            lambda: (query(prom_port, "count_over_time(wsv2_store_breaker_opened_total[1m]) >= 3")[0] or [])
            and (query(prom_port, "wsv2_cooldowns_total")[0] or []),
        )
        passed += 1
        step("workload with failovers, cooldowns and a breaker opening scraped")

        failed = []
        for title, expr in exprs:
            result, error = query(prom_port, expr.replace("$__rate_interval", RATE_INTERVAL))
            if error is not None:
                failed.append(f"{title}: invalid query {expr!r}: {error}")
            elif not result:
                failed.append(f"{title}: empty result for {expr!r}")
            else:
                passed += 1
        for failure in failed:
            step(failure)
        step(f"{len(exprs) - len(failed)} of {len(exprs)} panel queries have data")
        print(f"prometheus-check: {passed} passed, {len(failed)} failed")
        return 1 if failed else 0
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
