#!/usr/bin/env python3
"""The figures of issue 13's items 2 and 3, measured against a gateway binary on loopback.

  idle: the gateway under `ulimit -n 128` gets 140 TCP connects that never send a byte and are
        held for --seconds; reports the gateway's CPU and log volume over that window, and
        whether a normal client (one WebSocket turn a second) is served meanwhile and after.
  drip: 200 connections each send one header byte a second; reports when the gateway closed
        each one, while a normal client runs one WebSocket turn a second.

  scripts/ingress-figures.py idle --gateway target/release/wsv2-gateway \\
      --mock target/release/wsv2-mock-upstream
  scripts/ingress-figures.py drip --gateway target/release/wsv2-gateway-smol \\
      --mock target/release/wsv2-mock-upstream

Prints one JSON object. Standard library only.
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

CLIENT_KEY = "sk-figures"
UPSTREAM_KEY = "sk-figures-upstream"
CREATE = b'{"type":"response.create","model":"gpt-5","input":"hi"}'


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


def start(gateway_bin, mock_bin, workdir, nofile, env_extra):
    """Starts the mock and the gateway (under `ulimit -n nofile` when given); returns both
    processes, the gateway's address and its log path"""
    mock_log = os.path.join(workdir, "mock.log")
    mock = subprocess.Popen(
        [mock_bin, "--api-key", UPSTREAM_KEY],
        stdout=open(mock_log, "wb"),
        stderr=subprocess.STDOUT,
    )
    mock_url = wait_for_line(mock_log, rb"listening on (\S+)").group(1).decode()
    config = os.path.join(workdir, "gateway.toml")
    with open(config, "w") as f:
        f.write(
            f'listen = "127.0.0.1:0"\nadmin_listen = "127.0.0.1:0"\n\n[[client_keys]]\nkey = "{CLIENT_KEY}"\n\n'
            f'[[accounts]]\nid = 1\nname = "mock"\ntoken = "{UPSTREAM_KEY}"\n'
            f'base_url = "{mock_url}"\n'
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSV2_")}
    env["RUST_LOG"] = "info"
    env.update(env_extra)
    log = os.path.join(workdir, "gateway.log")
    limit = f"ulimit -n {nofile} && " if nofile else ""
    gateway = subprocess.Popen(
        ["sh", "-c", limit + 'exec "$0" "$@"', gateway_bin, "serve", "--config", config],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    m = wait_for_line(log, rb"listening on ws://([0-9.]+):(\d+)")
    return mock, gateway, (m.group(1).decode(), int(m.group(2))), log


def cpu_seconds(pid):
    """utime + stime of `pid`, in seconds"""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def ws_turn(addr, timeout=5.0):
    """One WebSocket turn by hand: upgrade, one create, events until response.completed.
    Returns the seconds it took, or None if it was not served within `timeout`."""
    started = time.monotonic()
    try:
        sock = socket.create_connection(addr, timeout=timeout)
    except OSError:
        return None
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
                return None
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            return None
        rest = head.split(b"\r\n\r\n", 1)[1]
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(CREATE))
        sock.sendall(bytes([0x81, 0x80 | len(CREATE)]) + mask + payload)

        buf = bytearray(rest)

        def take(n):
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf.extend(chunk)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        while True:
            b0, b1 = take(2)
            length = b1 & 0x7F
            if length == 126:
                length = int.from_bytes(take(2), "big")
            elif length == 127:
                length = int.from_bytes(take(8), "big")
            data = take(length)
            if b0 & 0x0F == 0x8:
                return None
            if b'"response.completed"' in data:
                return time.monotonic() - started
    except (OSError, ConnectionError):
        return None
    finally:
        sock.close()


class Client(threading.Thread):
    """A normal client: one turn a second until stopped"""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.results, self.stop = addr, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            began = time.monotonic()
            self.results.append(ws_turn(self.addr))
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def summary(self):
        served = [r for r in self.results if r is not None]
        return {
            "turns": len(self.results),
            "served": len(served),
            "turn_ms_median": round(statistics.median(served) * 1000, 1) if served else None,
            "turn_ms_max": round(max(served) * 1000, 1) if served else None,
        }


def log_volume(path):
    with open(path, "rb") as f:
        data = f.read()
    return len(data), data.count(b"\n")


def settings(args):
    """The `--set NAME=VALUE` settings as environment variables"""
    return dict(pair.split("=", 1) for pair in args.set)


def idle(args, workdir):
    mock, gateway, addr, log = start(args.gateway, args.mock, workdir, args.nofile, settings(args))
    try:
        time.sleep(1.0)  # let the warm-up dial settle before the window opens
        held = []
        for _ in range(args.connects):
            s = socket.socket()
            s.settimeout(2.0)
            try:
                s.connect(addr)
            except OSError:
                pass
            held.append(s)
        client = Client(addr)
        cpu0, (bytes0, lines0), t0 = cpu_seconds(gateway.pid), log_volume(log), time.monotonic()
        client.start()
        time.sleep(args.seconds)
        client.stop.set()
        client.join()
        window = time.monotonic() - t0
        cpu1, (bytes1, lines1) = cpu_seconds(gateway.pid), log_volume(log)
        closed = 0
        for s in held:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        after = ws_turn(addr, timeout=10.0)
        with open(log, "rb") as f:
            text = f.read()
        return {
            "scenario": f"{args.connects} idle connects held {args.seconds}s under ulimit -n {args.nofile}",
            "gateway": args.gateway,
            "settings": args.set,
            "window_s": round(window, 1),
            "cpu_percent": round((cpu1 - cpu0) / window * 100, 1),
            "log_bytes": bytes1 - bytes0,
            "log_lines": lines1 - lines0,
            "accept_failed_lines": text.count(b"accept failed"),
            "idle_connects_closed_by_gateway": closed,
            "client_during": client.summary(),
            "client_after_ms": None if after is None else round(after * 1000, 1),
        }
    finally:
        gateway.send_signal(signal.SIGKILL)
        mock.send_signal(signal.SIGKILL)


def drip(args, workdir):
    mock, gateway, addr, log = start(args.gateway, args.mock, workdir, None, settings(args))
    try:
        header = b"GET /v1/responses HTTP/1.1\r\nHost: gateway\r\nX-Drip: " + b"a" * 4096
        conns = []
        for _ in range(args.connections):
            s = socket.create_connection(addr, timeout=2.0)
            s.setblocking(False)
            conns.append({"sock": s, "opened": time.monotonic(), "sent": 0, "closed_after": None})
        client = Client(addr)
        client.start()
        started = time.monotonic()
        next_byte = started
        while time.monotonic() - started < args.seconds_max:
            open_conns = [c for c in conns if c["closed_after"] is None]
            if not open_conns:
                break
            now = time.monotonic()
            if now >= next_byte:
                for c in open_conns:
                    try:
                        c["sock"].send(header[c["sent"] % len(header):][:1])
                        c["sent"] += 1
                    except OSError:
                        c["closed_after"] = time.monotonic() - c["opened"]
                next_byte += 1.0
            readable, _, _ = select.select(
                [c["sock"] for c in open_conns if c["closed_after"] is None], [], [],
                max(0.0, min(0.1, next_byte - time.monotonic())),
            )
            for c in open_conns:
                if c["sock"] in readable and c["closed_after"] is None:
                    try:
                        if c["sock"].recv(4096) == b"":
                            c["closed_after"] = time.monotonic() - c["opened"]
                    except BlockingIOError:
                        pass
                    except OSError:
                        c["closed_after"] = time.monotonic() - c["opened"]
        client.stop.set()
        client.join()
        closed = sorted(c["closed_after"] for c in conns if c["closed_after"] is not None)
        return {
            "scenario": f"{args.connections} connections sending one header byte a second",
            "gateway": args.gateway,
            "settings": args.set,
            "watched_s": round(time.monotonic() - started, 1),
            "closed": len(closed),
            "still_open": args.connections - len(closed),
            "closed_after_s_min": round(closed[0], 2) if closed else None,
            "closed_after_s_max": round(closed[-1], 2) if closed else None,
            "client_during": client.summary(),
        }
    finally:
        gateway.send_signal(signal.SIGKILL)
        mock.send_signal(signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["idle", "drip"])
    parser.add_argument("--gateway", required=True, help="wsv2-gateway or wsv2-gateway-smol")
    parser.add_argument("--mock", required=True, help="wsv2-mock-upstream")
    parser.add_argument("--nofile", type=int, default=128, help="idle: ulimit -n of the gateway")
    parser.add_argument("--connects", type=int, default=140, help="idle: idle connects")
    parser.add_argument("--seconds", type=float, default=20.0, help="idle: how long they are held")
    parser.add_argument("--connections", type=int, default=200, help="drip: dripping connections")
    parser.add_argument("--seconds-max", type=float, default=75.0, help="drip: give up after")
    parser.add_argument(
        "--set", action="append", default=[], metavar="WSV2_NAME=VALUE",
        help="a gateway setting, e.g. WSV2_INGRESS__HEADER_READ_TIMEOUT=10s (repeatable)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wsv2-figures-") as workdir:
        result = idle(args, workdir) if args.scenario == "idle" else drip(args, workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
