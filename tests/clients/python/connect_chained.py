"""openai-python `client.responses.connect()`: two chained turns on one socket, then the
`previous_response_not_found` error for a store:false continuation of an unknown id."""

from common import MODEL, check, parse_args, passed

from openai import OpenAI

TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}


def read_turn(connection):
    """Events of one response, up to and including its terminal or error event."""
    events = []
    while True:
        event = connection.recv()
        events.append(event)
        if event.type in TERMINAL:
            return events


def main() -> None:
    args = parse_args(__doc__)
    client = OpenAI(api_key=args.api_key, base_url=args.base_url)
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Say hello.", store=False)
        first = read_turn(connection)
        check(first[0].type == "response.created", f"first event {first[0].type}")
        check(first[-1].type == "response.completed", f"turn 1 ended with {first[-1].type}")
        id1 = first[-1].response.id
        text = "".join(e.delta for e in first if e.type == "response.output_text.delta")
        check(len(text) > 0, "turn 1 streamed no text")
        check([e.sequence_number for e in first] == list(range(len(first))), "turn 1 sequence numbers")

        connection.response.create(model=MODEL, input="Again.", previous_response_id=id1, store=False)
        second = read_turn(connection)
        check(second[-1].type == "response.completed", f"turn 2 ended with {second[-1].type}")
        id2 = second[-1].response.id
        check(id2 != id1, "turn 2 reused the id of turn 1")
        check(second[-1].response.previous_response_id == id1, "turn 2 does not echo previous_response_id")

        unknown = "resp_wsv2_client_unknown"
        connection.response.create(model=MODEL, input="Orphan.", previous_response_id=unknown, store=False)
        error = read_turn(connection)[-1]
        check(error.type == "error", f"unknown id gave {error.type}, expected error")
        check(error.status == 400, f"error status {error.status}")
        check(error.error.code == "previous_response_not_found", f"error code {error.error.code}")
        check(error.error.param == "previous_response_id", f"error param {error.error.param}")
        check(unknown in error.error.message, "error message does not name the id")
    passed("two chained turns on one socket, then previous_response_not_found (status 400)")


if __name__ == "__main__":
    main()
