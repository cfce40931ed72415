/**
 * One generation shown in one pane: its tokens coloured by where they came from, and its figures.
 *
 * Live figures come from the token frames' `t_ms` (ms since the server submitted the request, the clock the
 * server's own `timings` use): TTFT is the first token's t_ms, tokens/s counts the tokens of the last second,
 * tokens/step is tokens ÷ frames (one frame per engine step, so in speculative mode it is the mean accepted
 * length). Acceptance and mean k need the number of proposals, which only the `done` frame reports; when it
 * arrives, every figure is replaced by the server's final value.
 */
const WINDOW_MS = 1000; // "current" tokens/s: tokens of the last second of the stream
const BARS = 120; // inter-token gaps drawn in the sparkline

const FINISH_WORDS = {
  stop: 'finished: end of text or a stop string',
  length: 'finished: max tokens reached',
  cancelled: 'stopped',
  shutdown: 'ended: the server shut down',
  error: 'failed',
};

const ms = (x) => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const rate = (x) => x.toFixed(x < 10 ? 1 : 0);
const percent = (x) => (x === null ? 'n/a' : `${(x * 100).toFixed(0)} %`);
const fixed = (x, digits) => (x === null ? 'n/a' : x.toFixed(digits));

export class Run {
  /** The generation's id on the socket, and the pane's title. */
  id;
  title;
  /** The completion: the concatenation of the frames' `text` deltas (exactly what the OpenAI API would return). */
  text = '';
  /** waiting → running → done | cancelled | error */
  state = 'waiting';
  /** The `done` frame, once it came. */
  done = null;
  /** {code, message, param?} when the generation was refused, failed or lost its connection. */
  error = null;
  /** Resolves with this run when it has ended, however it ended. */
  finished;

  #pane;
  #times = []; // every token's t_ms, in order
  #steps = 0;
  #resolve;

  constructor(pane, title, id) {
    this.title = title;
    this.id = id;
    this.#pane = pane;
    pane.querySelector('.title').textContent = title;
    this.finished = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  get running() {
    return this.state === 'waiting' || this.state === 'running';
  }

  /** The StreamConnection listener: every frame of this generation. */
  handle = (frame) => {
    if (frame.type === 'start') this.#start(frame);
    else if (frame.type === 'token') this.#token(frame);
    else if (frame.type === 'done') this.#done(frame);
    else if (frame.type === 'error')
      this.#end('error', 'refused', { code: frame.code, message: frame.message, param: frame.details?.param });
    else if (frame.type === 'lost') this.#end('error', 'connection lost', { code: 'disconnected', message: frame.message });
  };

  #start(f) {
    this.#setState('running', f.queue_ms > 1 ? `generating (waited ${ms(f.queue_ms)} for a slot)` : 'generating…');
    this.#q('.meta').textContent = `${f.mode} · ${f.model} · seed ${f.seed}`;
  }

  #token(f) {
    this.text += f.text;
    const out = this.#q('.text');
    // Each token's own text, coloured by its source. (Around a stop string or a character split across tokens
    // this can differ slightly from the delta text, which is why `this.text` is kept from the deltas.)
    for (const t of f.tokens) {
      const span = document.createElement('span');
      span.className = `tok ${t.source}`;
      span.textContent = t.text;
      span.title = `token ${t.id} · ${t.source} · ${t.t_ms.toFixed(1)} ms`;
      out.append(span);
      this.#times.push(t.t_ms);
    }
    if (f.tokens.length === 0) return;
    this.#steps++;
    const times = this.#times;
    const last = times.at(-1);
    const window = Math.min(WINDOW_MS, last);
    const recent = times.length - times.findIndex((t) => t > last - window);
    this.#fig('ttft', ms(times[0]));
    this.#fig('tps', window > 0 ? rate(recent / (window / 1000)) : '…');
    this.#fig('tokens', String(times.length));
    this.#fig('per-step', (times.length / this.#steps).toFixed(2));
    this.#fig('acceptance', '…');
    this.#fig('mean-k', '…');
    this.#sparkline();
  }

  #done(f) {
    this.done = f;
    const { timings: t, speculative: s } = f;
    this.#fig('ttft', f.usage.completion_tokens > 0 ? ms(t.ttft_ms) : '–');
    this.#fig('tps', rate(t.tokens_per_second));
    this.#fig('tokens', String(f.usage.completion_tokens));
    this.#fig('acceptance', percent(s.acceptance_rate));
    this.#fig('mean-k', fixed(s.mean_k, 2));
    if (s.mean_accepted_length !== null) this.#fig('per-step', s.mean_accepted_length.toFixed(2));
    this.#fig('itl', `mean ${ms(t.itl_ms.mean)} · p95 ${ms(t.itl_ms.p95)} · max ${ms(t.itl_ms.max)}`);
    const words = FINISH_WORDS[f.finish_reason] ?? f.finish_reason;
    if (f.finish_reason === 'error') this.#end('error', `${words}: ${f.error?.message ?? ''}`, f.error ?? null);
    else this.#end(f.finish_reason === 'cancelled' || f.finish_reason === 'shutdown' ? 'cancelled' : 'done', words, null);
  }

  #end(state, words, error) {
    if (!this.running) return;
    this.error = error;
    this.#setState(state, words);
    if (error && this.#times.length === 0) this.#q('.text').textContent = error.message; // nothing else to show
    this.#resolve(this);
  }

  /** One bar per inter-token gap: tall bars are the waits between steps, the ~0 ms gaps inside a step are flat. */
  #sparkline() {
    const gaps = this.#times
      .slice(-BARS - 1)
      .map((t, i, all) => (i === 0 ? null : t - all[i - 1]))
      .slice(1);
    const max = Math.max(0, ...gaps);
    const width = 240 / BARS;
    const d = gaps.map((g, i) => `M${((i + 0.5) * width).toFixed(1)} 36V${(36 - (g / Math.max(max, 1)) * 34).toFixed(1)}`).join('');
    const path = this.#q('svg path');
    path.setAttribute('d', d);
    path.setAttribute('stroke-width', String(width * 0.7));
    this.#fig('itl', `last ${gaps.length} (max ${ms(max)})`);
  }

  #setState(state, words) {
    this.state = state;
    this.#pane.dataset.state = state;
    this.#q('.status').textContent = words;
  }

  #fig(name, value) {
    this.#q(`[data-fig="${name}"]`).textContent = value;
  }

  #q(selector) {
    return this.#pane.querySelector(selector);
  }
}
