"""Opens N client WebSockets to a gateway, runs one turn on each, then holds them all open.

Prints `READY <n>` once every socket has finished its turn (the gateway then holds one idle
session, and its leased upstream conn, per socket), and keeps the sockets open until stdin
closes. Used by idle_rss.sh; needs the `websockets` package (tests/clients/.venv has it).
"""

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect

TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}


async def one(url: str, key: str, ready: asyncio.Semaphore, held: list) -> None:
    async with ready:
        ws = await connect(
            url,
            additional_headers={"Authorization": f"Bearer {key}"},
            max_size=None,
            ping_interval=None,  # idle means idle: no client pings
            compression=None,
        )
        await ws.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi"}))
        while True:
            event = json.loads(await ws.recv())
            if event["type"] in TERMINAL:
                if event["type"] != "response.completed":
                    raise RuntimeError(f"turn ended with {event}")
                break
        held.append(ws)


async def main() -> None:
    url, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    held: list = []
    # A bounded number of handshakes in flight at once (the listen backlog is finite).
    ready = asyncio.Semaphore(64)
    await asyncio.gather(*(one(url, key, ready, held) for _ in range(count)))
    print(f"READY {len(held)}", flush=True)
    # Hold until the caller closes stdin. The sockets keep reading so pings are answered.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    # Leave without close handshakes: the measurement is over.
    os._exit(0)


asyncio.run(main())
