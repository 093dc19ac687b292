#!/usr/bin/env python3
"""The figure of issue 13's item 6 (one key can starve an account), against a gateway binary.

An attacker key opens --sockets WebSockets, each queueing --creates creates whose answers are
large (--attacker-deltas deltas of the mock's --delta-bytes), and never reads a byte. Once the
attack is in place, a victim key runs --victim-turns turns one after another (answers of one
delta) on one socket; for each it measures the time to first event and whether the turn
completed. The account's concurrency is --concurrency, so the attacker's demand is
sockets × creates / concurrency times it.

  scripts/fairness-figure.py --gateway target/debug/wsv2-gateway \\
      --mock target/debug/wsv2-mock-upstream
  scripts/fairness-figure.py --gateway target/debug/wsv2-gateway-smol \\
      --mock target/debug/wsv2-mock-upstream --set WSV2_SESSION__BLOCKED_CLIENT_TIMEOUT=2s

Prints one JSON object. Standard library only.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time

VICTIM_KEY = "sk-figures-victim"
ATTACKER_KEY = "sk-figures-attacker"
UPSTREAM_KEY = "sk-figures-upstream"


def wait_for_line(path, pattern, timeout=20.0):
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


def start(args, workdir):
    """Starts the mock and the gateway; returns both processes and the gateway's address"""
    mock_log = os.path.join(workdir, "mock.log")
    mock = subprocess.Popen(
        [args.mock, "--api-key", UPSTREAM_KEY, "--delta-bytes", str(args.delta_bytes)],
        stdout=open(mock_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    mock_url = wait_for_line(mock_log, rb"listening on (\S+)").group(1).decode()
    config = os.path.join(workdir, "gateway.toml")
    with open(config, "w") as f:
        f.write(
            f'listen = "127.0.0.1:0"\nadmin_listen = "127.0.0.1:0"\n\n'
            f'[[client_keys]]\nkey = "{VICTIM_KEY}"\n\n'
            f'[[client_keys]]\nkey = "{ATTACKER_KEY}"\n\n'
            f'[[accounts]]\nid = 1\nname = "mock"\ntoken = "{UPSTREAM_KEY}"\n'
            f'base_url = "{mock_url}"\nconcurrency = {args.concurrency}\n'
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSV2_")}
    env["RUST_LOG"] = "warn"
    env.update(dict(pair.split("=", 1) for pair in args.set))
    log = os.path.join(workdir, "gateway.log")
    gateway = subprocess.Popen(
        [args.gateway, "serve", "--config", config],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    m = wait_for_line(log, rb"listening on ws://([0-9.]+):(\d+)")
    return mock, gateway, (m.group(1).decode(), int(m.group(2)))


def frame(payload):
    """A masked client text frame"""
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    else:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + body


def create(input_text, deltas):
    return json.dumps(
        {"type": "response.create", "model": "gpt-5", "input": input_text,
         "metadata": {"mock_deltas": deltas}}
    ).encode()


def upgrade(addr, key, timeout=10.0):
    """An upgraded socket and the bytes read past the 101"""
    sock = socket.create_connection(addr, timeout=timeout)
    sock.settimeout(timeout)
    sock.sendall(
        b"GET /v1/responses HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + f"Authorization: Bearer {key}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the 101")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return sock, bytearray(head.split(b"\r\n\r\n", 1)[1])


class Reader:
    """Server frames of one socket"""

    def __init__(self, sock, buf):
        self.sock, self.buf = sock, buf

    def take(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("closed")
            self.buf.extend(chunk)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def next(self):
        b0, b1 = self.take(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(self.take(2), "big")
        elif length == 127:
            length = int.from_bytes(self.take(8), "big")
        return b0 & 0x0F, self.take(length)


def victim_turn(reader, sock, i, timeout):
    """(time to first event or None, outcome) of one turn"""
    sent = time.monotonic()
    sock.sendall(frame(create(f"victim turn {i}", 1)))
    first = None
    deadline = sent + timeout
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            op, data = reader.next()
            if op == 0x8:
                return first, "closed"
            if op != 0x1:
                continue
            if first is None:
                first = time.monotonic() - sent
            if b'"response.completed"' in data:
                return first, "completed"
            if b'"type":"error"' in data:
                m = re.search(rb'"code":"([a-z_]+)"', data)
                return first, "error:" + (m.group(1).decode() if m else "?")
    except socket.timeout:
        return first, "timeout"


def run(args, workdir):
    mock, gateway, addr = start(args, workdir)
    try:
        attackers = []
        for s in range(args.sockets):
            sock, _ = upgrade(addr, ATTACKER_KEY)
            # The kernel's receive buffer stays as small as it gets: the attacker reads nothing.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            for c in range(args.creates):
                sock.sendall(frame(create(f"hog {s}.{c}", args.attacker_deltas)))
            attackers.append(sock)
        time.sleep(args.settle)  # let the attack fill the account's slots and block
        sock, rest = upgrade(addr, VICTIM_KEY)
        reader = Reader(sock, rest)
        results = []
        started = time.monotonic()
        for i in range(args.victim_turns):
            results.append(victim_turn(reader, sock, i, args.turn_timeout))
            if results[-1][1] != "completed":
                # A refused or lost turn: carry on on a new socket.
                sock.close()
                sock, rest = upgrade(addr, VICTIM_KEY)
                reader = Reader(sock, rest)
        window = time.monotonic() - started
        ttfe = sorted(r[0] for r in results if r[0] is not None)
        completed = sum(1 for r in results if r[1] == "completed")
        outcomes = {}
        for _, outcome in results:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        def pct(p):
            if not ttfe:
                return None
            return round(ttfe[min(len(ttfe) - 1, int(round(p / 100 * len(ttfe) + 0.5)) - 1)] * 1000, 1)

        for a in attackers:
            a.close()
        return {
            "gateway": args.gateway,
            "settings": args.set,
            "concurrency": args.concurrency,
            "attacker": f"{args.sockets} sockets x {args.creates} creates of "
                        f"{args.attacker_deltas} x {args.delta_bytes} B, never read",
            "attacker_demand_over_concurrency": args.sockets * args.creates / args.concurrency,
            "victim_turns": len(results),
            "victim_completed": completed,
            "victim_completed_percent": round(100 * completed / len(results), 2),
            "victim_outcomes": outcomes,
            "ttfe_ms_p50": round(statistics.median(ttfe) * 1000, 1) if ttfe else None,
            "ttfe_ms_p99": pct(99),
            "ttfe_ms_max": round(ttfe[-1] * 1000, 1) if ttfe else None,
            "window_s": round(window, 1),
            "turns_over_1s": [
                [i, round(r[0] * 1000)] for i, r in enumerate(results)
                if r[0] is not None and r[0] > 1.0
            ],
        }
    finally:
        gateway.send_signal(signal.SIGKILL)
        mock.send_signal(signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True, help="wsv2-gateway or wsv2-gateway-smol")
    parser.add_argument("--mock", required=True, help="wsv2-mock-upstream")
    parser.add_argument("--concurrency", type=int, default=16, help="the account's concurrency")
    parser.add_argument("--sockets", type=int, default=6, help="attacker sockets")
    parser.add_argument("--creates", type=int, default=64, help="creates queued per attacker socket")
    parser.add_argument("--attacker-deltas", type=int, default=64, help="deltas of each attacker answer")
    parser.add_argument("--delta-bytes", type=int, default=16384, help="the mock's delta size")
    parser.add_argument("--victim-turns", type=int, default=300, help="victim turns, one after another")
    parser.add_argument("--turn-timeout", type=float, default=30.0, help="give a victim turn up after")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between attack and victim")
    parser.add_argument(
        "--set", action="append", default=[], metavar="WSV2_NAME=VALUE",
        help="a gateway setting, e.g. WSV2_SESSION__BLOCKED_CLIENT_TIMEOUT=2s (repeatable)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wsv2-fairness-") as workdir:
        result = run(args, workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
