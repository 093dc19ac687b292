#!/usr/bin/env python3
"""The failover figures of issue 13 item 1, measured against a gateway binary on loopback.

Two accounts of equal priority: account 1 is dead, account 2 is the mock upstream. A baseline
run has only the mock. Each run drives --turns first turns one after another, each on a new
client (a new WebSocket, or a new POST with `stream: true`), and reports how many completed and
the time from sending the create to its first event.

  --dead refused    account 1 is a closed port (every connect is refused at once); the turns
                    start as soon as the gateway listens (--settle to wait)
  --dead blackhole  account 1 accepts TCP and never answers; the turns start once the gateway
                    has seen it failing (--seen-failing dial failures logged for it)
  --dead none       baseline: only the mock

  scripts/failover-figures.py --gateway target/debug/wsv2-gateway \\
      --mock target/debug/wsv2-mock-upstream --dead refused --transport ws

Prints one JSON object. Standard library only.
"""

import argparse
import importlib.util
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "ingress_figures", os.path.join(HERE, "ingress-figures.py")
)
ingress = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingress)

CLIENT_KEY = ingress.CLIENT_KEY
UPSTREAM_KEY = ingress.UPSTREAM_KEY
CREATE = ingress.CREATE


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Blackhole(threading.Thread):
    """Accepts TCP and never sends a byte"""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.held = []

    def run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)


def start(gateway_bin, mock_bin, workdir, dead_url, env_extra):
    mock_log = os.path.join(workdir, "mock.log")
    mock = subprocess.Popen(
        [mock_bin, "--api-key", UPSTREAM_KEY],
        stdout=open(mock_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    mock_url = ingress.wait_for_line(mock_log, rb"listening on (\S+)").group(1).decode()
    accounts = []
    if dead_url:
        accounts.append((1, "dead", dead_url))
    accounts.append((2, "mock", mock_url))
    config = os.path.join(workdir, "gateway.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:0"\n\n[[client_keys]]\nkey = "{CLIENT_KEY}"\n')
        for id_, name, url in accounts:
            f.write(
                f'\n[[accounts]]\nid = {id_}\nname = "{name}"\ntoken = "{UPSTREAM_KEY}"\n'
                f'base_url = "{url}"\n'
            )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSV2_")}
    env["RUST_LOG"] = "info"
    env.update(env_extra)
    log = os.path.join(workdir, "gateway.log")
    gateway = subprocess.Popen(
        [gateway_bin, "serve", "--config", config],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    m = ingress.wait_for_line(log, rb"listening on ws://([0-9.]+):(\d+)")
    return mock, gateway, (m.group(1).decode(), int(m.group(2))), log


def ws_first_turn(addr, timeout):
    """A new WebSocket, one create: (seconds from the create to its first event, completed)"""
    sock = socket.create_connection(addr, timeout=timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(
            b"GET /v1/responses HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + f"Authorization: Bearer {CLIENT_KEY}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return None, False
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            return None, False
        buf = bytearray(head.split(b"\r\n\r\n", 1)[1])
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(CREATE))
        sent = time.monotonic()
        sock.sendall(bytes([0x81, 0x80 | len(CREATE)]) + mask + payload)

        def take(n):
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf.extend(chunk)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        first = None
        while True:
            b0, b1 = take(2)
            length = b1 & 0x7F
            if length == 126:
                length = int.from_bytes(take(2), "big")
            elif length == 127:
                length = int.from_bytes(take(8), "big")
            data = take(length)
            if b0 & 0x0F == 0x8:
                return first, False
            if b0 & 0x0F != 0x1:
                continue
            if first is None:
                first = time.monotonic() - sent
            if b'"type":"error"' in data:
                return first, False
            if b'"response.completed"' in data:
                return first, True
    except (OSError, ConnectionError):
        return None, False
    finally:
        sock.close()


def post_first_turn(addr, timeout):
    """A new POST with `stream: true`: (seconds to its first SSE event, completed)"""
    body = b'{"model":"gpt-5","input":"hi","stream":true}'
    sock = socket.create_connection(addr, timeout=timeout)
    try:
        sock.settimeout(timeout)
        sent = time.monotonic()
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {CLIENT_KEY}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )
        data = b""
        first = None
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if first is None and b"\r\n\r\n" in data and b"event:" in data.split(b"\r\n\r\n", 1)[1]:
                first = time.monotonic() - sent
        ok = data.startswith(b"HTTP/1.1 200") and b"response.completed" in data
        return first, ok
    except OSError:
        return None, False
    finally:
        sock.close()


def dial_failures_logged(log, account):
    with open(log, "rb") as f:
        text = re.sub(rb"\x1b\[[0-9;]*m", b"", f.read())
    return sum(
        1
        for line in text.splitlines()
        if b"upstream dial failed" in line and f"account={account}".encode() in line
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gateway", required=True)
    p.add_argument("--mock", required=True)
    p.add_argument("--dead", choices=["refused", "blackhole", "none"], required=True)
    p.add_argument("--transport", choices=["ws", "post"], required=True)
    p.add_argument("--turns", type=int, default=200)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--seen-failing", type=int, default=2,
                   help="blackhole: dial failures of account 1 logged before the turns start")
    p.add_argument("--settle", type=float, default=0.0,
                   help="refused / none: seconds between the gateway's start and the first turn")
    p.add_argument("--set", action="append", default=[],
                   help="NAME=VALUE environment override for the gateway (WSV2_...)")
    args = p.parse_args()

    blackhole = None
    dead_url = None
    if args.dead == "refused":
        dead_url = f"ws://127.0.0.1:{closed_port()}/v1/responses"
    elif args.dead == "blackhole":
        blackhole = Blackhole()
        blackhole.start()
        dead_url = f"ws://127.0.0.1:{blackhole.port}/v1/responses"

    with tempfile.TemporaryDirectory() as workdir:
        env = dict(pair.split("=", 1) for pair in args.set)
        mock, gateway, addr, log = start(args.gateway, args.mock, workdir, dead_url, env)
        try:
            waited = 0.0
            if args.dead == "blackhole":
                began = time.monotonic()
                while dial_failures_logged(log, "a1") < args.seen_failing:
                    if time.monotonic() - began > 120:
                        raise RuntimeError("account 1 never seen failing")
                    time.sleep(0.1)
                waited = time.monotonic() - began
            else:
                time.sleep(args.settle)
            turn = ws_first_turn if args.transport == "ws" else post_first_turn
            results = [turn(addr, args.timeout) for _ in range(args.turns)]
            firsts = [f for f, ok in results if ok and f is not None]
            completed = sum(1 for _, ok in results if ok)
            with open(log, "rb") as f:
                text = f.read()
            print(json.dumps({
                "gateway": os.path.basename(args.gateway),
                "dead": args.dead,
                "transport": args.transport,
                "turns": args.turns,
                "completed": completed,
                "completed_pct": round(100.0 * completed / args.turns, 2),
                "first_event_ms_median": round(statistics.median(firsts) * 1000, 2) if firsts else None,
                "first_event_ms_p90": round(statistics.quantiles(firsts, n=10)[-1] * 1000, 2) if len(firsts) >= 10 else None,
                "first_event_ms_max": round(max(firsts) * 1000, 2) if firsts else None,
                "waited_for_seen_failing_s": round(waited, 1),
                "dial_failures_logged_account1": dial_failures_logged(log, "a1"),
                "error_lines": re.sub(rb"\x1b\[[0-9;]*m", b"", text).count(b" ERROR "),
            }))
        finally:
            for proc in (gateway, mock):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
