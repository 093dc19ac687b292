// openai-node `ResponsesWS`: two chained turns on one socket, then the
// `previous_response_not_found` error for a store:false continuation of an unknown id.
// Usage: node responses_ws.mjs --base-url http://127.0.0.1:PORT/v1 --api-key KEY
//        (or WSV2_BASE_URL / WSV2_API_KEY)
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';

const MODEL = 'mock-model';
const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete', 'error']);

function arg(name, env) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : process.env[env];
}

function fail(message) {
  console.log(`FAIL responses_ws.mjs: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

const baseURL = arg('--base-url', 'WSV2_BASE_URL');
const apiKey = arg('--api-key', 'WSV2_API_KEY');
if (!baseURL || !apiKey) fail('--base-url and --api-key (or WSV2_BASE_URL / WSV2_API_KEY) are required');
const timeout = setTimeout(() => fail('timed out after 60s'), 60_000);

const client = new OpenAI({ apiKey, baseURL });
const ws = new ResponsesWS(client);

// Every server event, error events included, in arrival order.
const queue = [];
let wake = null;
ws.on('event', (event) => {
  queue.push(event);
  if (wake) wake();
});
// Error events also surface here; they are checked from the event queue instead.
ws.on('error', () => {});
ws.on('close', (code) => {
  queue.push({ type: 'socket.closed', code });
  if (wake) wake();
});

async function nextEvent() {
  while (queue.length === 0) await new Promise((resolve) => (wake = resolve));
  return queue.shift();
}

async function turn(create) {
  ws.send({ type: 'response.create', model: MODEL, store: false, ...create });
  const events = [];
  for (;;) {
    const event = await nextEvent();
    check(event.type !== 'socket.closed', `socket closed (${event.code}) mid-turn`);
    events.push(event);
    if (TERMINAL.has(event.type)) return events;
  }
}

const first = await turn({ input: 'Say hello.' });
check(first[0].type === 'response.created', `first event ${first[0].type}`);
check(first.at(-1).type === 'response.completed', `turn 1 ended with ${first.at(-1).type}`);
const id1 = first.at(-1).response.id;
check(first.every((e, i) => e.sequence_number === i), 'turn 1 sequence numbers');

const second = await turn({ input: 'Again.', previous_response_id: id1 });
check(second.at(-1).type === 'response.completed', `turn 2 ended with ${second.at(-1).type}`);
check(second.at(-1).response.previous_response_id === id1, 'turn 2 does not echo previous_response_id');

const unknown = 'resp_wsv2_node_unknown';
const error = (await turn({ input: 'Orphan.', previous_response_id: unknown })).at(-1);
check(error.type === 'error', `unknown id gave ${error.type}`);
check(error.status === 400, `error status ${error.status}`);
check(error.error.code === 'previous_response_not_found', `error code ${error.error.code}`);
check(error.error.param === 'previous_response_id', `error param ${error.error.param}`);

ws.close({ code: 1000, reason: 'done' });
clearTimeout(timeout);
console.log('PASS responses_ws.mjs: two chained turns on one socket, then previous_response_not_found (status 400)');
