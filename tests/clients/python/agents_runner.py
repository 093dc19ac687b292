"""openai-agents `OpenAIProvider(use_responses_websocket=True)`: two chained `Runner.run` calls
that reuse one WebSocket (the SDK offers permessage-deflate; a server may decline it)."""

import asyncio
import os

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from common import MODEL, check, parse_args, passed  # noqa: E402

from agents import Agent, RunConfig, Runner, set_tracing_disabled  # noqa: E402
from agents.models.openai_provider import OpenAIProvider  # noqa: E402


async def main() -> None:
    args = parse_args(__doc__)
    set_tracing_disabled(True)
    provider = OpenAIProvider(api_key=args.api_key, base_url=args.base_url, use_responses_websocket=True)
    agent = Agent(name="wsv2-conformance", instructions="Answer briefly.", model=MODEL)
    config = RunConfig(model_provider=provider, tracing_disabled=True)
    try:
        first = await Runner.run(agent, "Say hello.", run_config=config)
        check(bool(first.final_output), "run 1 produced no output")
        check(first.last_response_id is not None, "run 1 has no response id")
        second = await Runner.run(
            agent, "Again.", run_config=config, previous_response_id=first.last_response_id
        )
        check(bool(second.final_output), "run 2 produced no output")
        check(second.last_response_id != first.last_response_id, "run 2 reused the response id")
    finally:
        await provider.aclose()
    passed("two chained Runner.run calls over the Responses WebSocket")


if __name__ == "__main__":
    asyncio.run(main())
