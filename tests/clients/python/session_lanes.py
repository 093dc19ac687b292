"""openai-python `AsyncResponsesWebSocketSession`: two named lanes × two chained turns each,
running concurrently on one socket."""

import asyncio

from common import MODEL, check, parse_args, passed

from openai import AsyncOpenAI
from openai.lib.responses_websocket import AsyncResponsesWebSocketSession, ResponsesWebSocketLimits

LIMITS = ResponsesWebSocketLimits(
    max_lanes=4,
    max_events_per_lane=4096,
    max_events=8192,
    max_bytes_per_lane=16 * 1024 * 1024,
    max_bytes=32 * 1024 * 1024,
)


async def run_lane(lane, name: str) -> list:
    await lane.send({"type": "response.create", "model": MODEL, "input": f"{name} one", "store": False})
    first = await lane.get_final_response()
    check(first.status == "completed", f"{name} turn 1 status {first.status}")
    await lane.send(
        {
            "type": "response.create",
            "model": MODEL,
            "input": f"{name} two",
            "store": False,
            "previous_response_id": first.id,
        }
    )
    second = await lane.get_final_response()
    check(second.status == "completed", f"{name} turn 2 status {second.status}")
    check(second.previous_response_id == first.id, f"{name} turn 2 does not chain to turn 1")
    check(len(second.output_text) > 0, f"{name} turn 2 has no text")
    return [first.id, second.id]


async def main() -> None:
    args = parse_args(__doc__)
    async with AsyncOpenAI(api_key=args.api_key, base_url=args.base_url) as client:
        async with client.responses.connect() as connection:
            async with AsyncResponsesWebSocketSession(connection, limits=LIMITS) as session:
                alpha, beta = session.lane("alpha"), session.lane("beta")
                ids = await asyncio.gather(run_lane(alpha, "alpha"), run_lane(beta, "beta"))
    flat = [i for lane in ids for i in lane]
    check(len(set(flat)) == 4, f"expected 4 distinct response ids, got {flat}")
    passed("two lanes × two chained turns on one socket")


if __name__ == "__main__":
    asyncio.run(main())
