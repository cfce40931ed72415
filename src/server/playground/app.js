/**
 * specd playground: plain ES modules, no build step, no dependencies. Read in this order:
 *   app.js    the form → `generate` frames; Generate, Compare, Stop; errors in words
 *   stream.js the WebSocket to /v1/stream: one socket, many generations by id, reconnect with backoff
 *   run.js    one generation's pane: tokens coloured by source, live figures, the inter-token sparkline
 */
import { Run } from './run.js';
import { StreamConnection } from './stream.js';

const $ = (selector) => document.querySelector(selector);
const form = $('#form');
const field = (name) => form.elements.namedItem(name);

// Browsers cannot set headers on a WebSocket, so a key given in the page's URL travels as ?api_key= (and as a
// Bearer header on the plain HTTP calls).
const apiKey = new URLSearchParams(location.search).get('api_key');
const wsUrl = new URL('/v1/stream', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
if (apiKey) wsUrl.searchParams.set('api_key', apiKey);

const conn = new StreamConnection(wsUrl.href, showConnection);
let runs = []; // the runs of the last Generate / Compare
let chat = []; // chat history: {role, content}
let seq = 0;

// ── errors in words ────────────────────────────────────────────────────────────────────────────────────────
const ERROR_WORDS = {
  overloaded: 'The server is busy: every generation slot is taken and its queue is full. Try again in a moment.',
  not_ready: 'The models are still loading. Try again in a few seconds.',
  shutting_down: 'The server is shutting down.',
  prompt_too_long: 'The prompt is longer than this server accepts.',
  invalid_request: 'The server did not accept a parameter.',
  too_large: 'The request is larger than this server accepts.',
  cancelled: 'The generation was cancelled while it waited for a slot.',
  internal: 'The server failed while generating.',
  disconnected: 'The generation ended because the connection was lost.',
};

function notice(text, kind = 'error') {
  const el = $('#notice');
  el.textContent = text ?? '';
  el.dataset.kind = kind;
  el.hidden = !text;
}

function showError({ code, message, param }) {
  const detail = message.charAt(0).toUpperCase() + message.slice(1) + (/[.)]$/.test(message) ? '' : '.');
  notice(`${ERROR_WORDS[code] ?? 'The request failed.'} ${detail}`, code === 'disconnected' ? 'connection' : 'error');
  const input = param && field(param);
  if (input) input.setAttribute('aria-invalid', 'true'); // the refused parameter, outlined in red
}

// ── connection status ──────────────────────────────────────────────────────────────────────────────────────
function showConnection({ state, message, retryInMs }) {
  $('#conn').dataset.state = state;
  $('#reconnect').hidden = state === 'open' || state === 'connecting';
  const words = {
    connecting: 'connecting…',
    open: 'connected',
    retrying: `disconnected; retrying in ${Math.ceil((retryInMs ?? 0) / 1000)} s`,
    closed: 'disconnected',
  };
  $('#conn-text').textContent = words[state];
  if (message) notice(message, state === 'open' ? 'error' : 'connection');
  else if (state === 'open' && $('#notice').dataset.kind === 'connection') notice(null); // back: the loss is over
  if (state === 'open' && !message) loadModels(); // (open with a message: a frame-level error, not a new socket)
  setBusy(runs.some((r) => r.running));
}

/** Names the models in the header; without a draft model only target mode is possible. */
let modelsRetry = 0;
async function loadModels() {
  clearTimeout(modelsRetry);
  const res = await fetch('/v1/models', { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} }).catch(() => null);
  if (res?.status === 503) {
    $('#models').textContent = 'models loading…';
    modelsRetry = setTimeout(loadModels, 2000);
    return;
  }
  if (!res?.ok) return;
  const { data } = await res.json();
  const target = data.find((m) => m.role === 'target');
  const draft = data.find((m) => m.role === 'draft');
  $('#models').textContent = `target ${target?.id ?? '?'} · draft ${draft?.id ?? 'none'}`;
  if (!draft) {
    for (const option of field('mode').options) option.disabled = option.value !== 'target';
    field('mode').value = 'target';
    $('#compare').title = 'this server runs without a draft model';
    setBusy(runs.some((r) => r.running));
  }
}

function setBusy(busy) {
  const canStart = !busy && conn.isOpen;
  $('#generate').disabled = !canStart;
  $('#compare').disabled = !canStart || field('mode').options[0].disabled;
  $('#stop').disabled = !busy;
}

// ── the form → a generate frame ────────────────────────────────────────────────────────────────────────────
/** Empty fields are left out (the server's defaults apply); text that is not a number is sent as typed, so the
 * server's validation message names it. */
function request() {
  const value = (name) => {
    const raw = field(name).value.trim();
    if (raw === '') return undefined;
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  };
  const text = field('prompt').value;
  const k = field('k').value.trim();
  return {
    ...(field('input').value === 'chat' ? { messages: [...chat, { role: 'user', content: text }] } : { prompt: text }),
    mode: field('mode').value,
    k: k === '' || k === 'auto' ? 'auto' : value('k'),
    temperature: value('temperature'),
    top_p: value('top_p'),
    max_tokens: value('max_tokens'),
    seed: value('seed'),
    ignore_eos: field('ignore_eos').checked || undefined,
  };
}

/** Starts one generation per spec, each in its own pane, all on the one socket; resolves when all have ended. */
function launch(specs) {
  notice(null);
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  $('#verdict').hidden = true;
  const base = request();
  const n = ++seq;
  const panes = $('#runs');
  panes.replaceChildren();
  panes.classList.toggle('compare', specs.length > 1);
  const started = specs.map(({ title, ...overrides }) => {
    const pane = $('#pane').content.firstElementChild.cloneNode(true);
    panes.append(pane);
    const run = new Run(pane, title, `${title}-${n}`);
    conn.generate({ type: 'generate', id: run.id, ...base, ...overrides }, run.handle);
    return run;
  });
  runs = started;
  setBusy(true);
  return Promise.all(
    started.map(async (run) => {
      await run.finished;
      if (run.error) showError(run.error);
    }),
  ).then(() => {
    setBusy(false);
    return started;
  });
}

async function generate() {
  const prompt = field('prompt').value;
  const [run] = await launch([{ title: field('mode').value }]);
  if (field('input').value === 'chat' && run.state === 'done') {
    chat.push({ role: 'user', content: prompt }, { role: 'assistant', content: run.text });
    field('prompt').value = '';
    renderChat();
  }
}

/**
 * The same prompt as speculative and as target, at the same time, greedy. Speculative decoding is lossless, so
 * the two texts must be identical; only the speed differs. Both streams share one engine, so each also waits
 * for the other's steps: the ratio shown is under that (equal) contention.
 */
async function compare() {
  const [spec, target] = await launch([
    { title: 'speculative', mode: 'speculative', temperature: 0 },
    { title: 'target', mode: 'target', temperature: 0, k: undefined },
  ]);
  const verdict = $('#verdict');
  verdict.hidden = false;
  const unfinished = [spec, target].filter((r) => r.state !== 'done');
  if (unfinished.length > 0) {
    verdict.dataset.identical = '';
    verdict.textContent = `Comparison incomplete: ${unfinished.map((r) => `${r.title} ${r.state === 'cancelled' ? 'was stopped' : 'failed'}`).join(', ')}.`;
    return;
  }
  const same = spec.text === target.text;
  let at = 0;
  while (at < spec.text.length && spec.text[at] === target.text[at]) at++;
  const s = spec.done.timings,
    t = target.done.timings;
  verdict.dataset.identical = String(same);
  verdict.replaceChildren();
  const line = (text, className) => verdict.appendChild(Object.assign(document.createElement('p'), { textContent: text, className }));
  line(
    same ? `✓ identical output (${spec.done.usage.completion_tokens} tokens)` : `✗ the outputs differ from character ${at}`,
    same ? 'same' : 'differs',
  );
  line(
    `speculative runs at ${(s.tokens_per_second / t.tokens_per_second).toFixed(2)}× the target's speed ` +
      `(${s.tokens_per_second.toFixed(0)} vs ${t.tokens_per_second.toFixed(0)} tokens/s); ` +
      `TTFT ${s.ttft_ms.toFixed(0)} vs ${t.ttft_ms.toFixed(0)} ms. Both ran at once on one engine.`,
  );
}

function renderChat() {
  const log = $('#chat-log');
  log.replaceChildren(...chat.map((m) => Object.assign(document.createElement('li'), { className: m.role, textContent: m.content })));
  log.hidden = chat.length === 0;
}

// ── wiring ─────────────────────────────────────────────────────────────────────────────────────────────────
form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!$('#generate').disabled) generate();
});
form.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});
$('#compare').addEventListener('click', () => compare());
$('#stop').addEventListener('click', () => {
  for (const run of runs) if (run.running) conn.cancel(run.id);
});
$('#reconnect').addEventListener('click', () => conn.connect());
for (const radio of form.querySelectorAll('[name="input"]')) {
  radio.addEventListener('change', () => {
    const isChat = field('input').value === 'chat';
    $('#new-chat').hidden = !isChat;
    field('prompt').placeholder = isChat ? 'Your message' : 'Prompt';
  });
}
$('#new-chat').addEventListener('click', () => {
  chat = [];
  renderChat();
});

conn.connect();
