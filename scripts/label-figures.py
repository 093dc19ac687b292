#!/usr/bin/env python3
"""The figure of issue 13's item 8: how big `/metrics` grows when clients send made-up model
names, measured against a gateway binary on loopback.

Starts the mock upstream and the gateway, scrapes /metrics, sends --names POST turns (JSON,
`stream: false`), each with a model name never used before, on --threads keep-alive
connections, scrapes again, and prints one JSON object: the sizes, the number of
`wsv2_tokens_total` series and of distinct `model` labels.

  scripts/label-figures.py --gateway target/debug/wsv2-gateway \\
      --mock target/debug/wsv2-mock-upstream --names 20000

Standard library only.
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
import time

CLIENT_KEY = "sk-figures"
UPSTREAM_KEY = "sk-figures-upstream"


def wait_for_line(path, pattern, timeout=30.0):
    """The first match of `pattern` in the file at `path`, polled until `timeout`"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                m = re.search(pattern, f.read())
            if m:
                return m
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no {pattern!r} in {path}")


def scrape(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode("utf-8", "replace")
    conn.close()
    return text


def post_turns(host, port, names, errors):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    for name in names:
        body = json.dumps({"model": name, "input": "hi", "stream": False})
        try:
            conn.request("POST", "/v1/responses", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                errors.append(answer.status)
        except (OSError, http.client.HTTPException) as e:
            errors.append(str(e))
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--mock", required=True)
    parser.add_argument("--names", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="wsv2-labels-")
    mock_log = os.path.join(workdir, "mock.log")
    mock = subprocess.Popen(
        [args.mock, "--api-key", UPSTREAM_KEY, "--deltas", "1"],
        stdout=open(mock_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    gateway = None
    try:
        mock_url = wait_for_line(mock_log, rb"listening on (\S+)").group(1).decode()
        config = os.path.join(workdir, "gateway.toml")
        with open(config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:0"\nadmin_listen = "127.0.0.1:0"\n\n[[client_keys]]\nkey = "{CLIENT_KEY}"\n\n'
                f'[[accounts]]\nid = 1\nname = "mock"\ntoken = "{UPSTREAM_KEY}"\n'
                f'base_url = "{mock_url}"\n'
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSV2_")}
        env["RUST_LOG"] = "warn"
        log = os.path.join(workdir, "gateway.log")
        gateway = subprocess.Popen(
            [args.gateway, "serve", "--config", config],
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        m = wait_for_line(log, rb"listening on ws://([0-9.]+):(\d+)")
        host, port = m.group(1).decode(), int(m.group(2))
        # /metrics is on the admin listener (a gateway without one serves it on the public port).
        admin = re.search(rb"admin listening on http://([0-9.]+):(\d+)", open(log, "rb").read())
        admin_host, admin_port = (admin.group(1).decode(), int(admin.group(2))) if admin else (host, port)
        # One turn first, so "before" already has the series a used gateway has.
        post_turns(host, port, ["gpt-5"], [])
        before = scrape(admin_host, admin_port)
        errors = []
        started = time.monotonic()
        threads = []
        for t in range(args.threads):
            names = [f"made-up-model-{i}" for i in range(t, args.names, args.threads)]
            thread = threading.Thread(target=post_turns, args=(host, port, names, errors))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        after = scrape(admin_host, admin_port)
        tokens = [l for l in after.splitlines() if l.startswith("wsv2_tokens_total{")]
        models = {m.group(1) for l in tokens for m in [re.search(r'model="([^"]*)"', l)] if m}
        print(
            json.dumps(
                {
                    "gateway": args.gateway,
                    "names": args.names,
                    "errors": len(errors),
                    "seconds": round(elapsed, 1),
                    "metrics_bytes_before": len(before),
                    "metrics_bytes_after": len(after),
                    "tokens_series_after": len(tokens),
                    "model_labels_after": len(models),
                }
            )
        )
    finally:
        for p in (gateway, mock):
            if p is not None:
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
