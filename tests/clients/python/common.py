"""Shared argument handling for the real-client scripts.

Every script takes the base URL (e.g. http://127.0.0.1:PORT/v1) and the API key as arguments or
from WSV2_BASE_URL / WSV2_API_KEY, so the same script runs against the mock or a gateway.
"""

import argparse
import os
import signal
import sys

MODEL = "mock-model"


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", default=os.environ.get("WSV2_BASE_URL"))
    parser.add_argument("--api-key", default=os.environ.get("WSV2_API_KEY"))
    parser.add_argument("--timeout", type=int, default=int(os.environ.get("WSV2_CLIENT_TIMEOUT", "60")))
    args = parser.parse_args()
    if not args.base_url or not args.api_key:
        parser.error("--base-url and --api-key (or WSV2_BASE_URL / WSV2_API_KEY) are required")
    # A hung server must fail the script, not hang CI.
    signal.signal(signal.SIGALRM, lambda *_: fail(f"timed out after {args.timeout}s"))
    signal.alarm(args.timeout)
    return args


def fail(message: str) -> None:
    print(f"FAIL {os.path.basename(sys.argv[0])}: {message}", flush=True)
    os._exit(1)


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def passed(summary: str) -> None:
    print(f"PASS {os.path.basename(sys.argv[0])}: {summary}", flush=True)
