/**
 * fuzz: two parts. (1) Malformed inputs over HTTP and the WebSocket, half each, in batches. Categories: bad JSON, wrong types,
 * huge numbers, negative / NaN / infinite parameters, unknown frames, binary frames, oversized bodies and frames,
 * invalid UTF-8, prompt-length edges, unsupported OpenAI parameters, bad routes, duplicate ids.
 *
 * Bars: zero crashes (the process is alive and /health answers after every batch); every input answered by a
 * structured error — HTTP: the status of the error table for a JSON envelope {error: {message, type, param,
 * code}}; WebSocket: an `error` frame with a known code and a message (carrying the frame's id when it had a
 * usable one), or the documented close code (1009 oversized, 1007 invalid UTF-8); never `internal`; a valid
 * request (HTTP and WebSocket) still succeeds after each batch.
 * (2) Structure-aware hostile inputs from fast-check (fuzz-hostile.ts: any depth, width and size, lone
 * surrogates, numbers past every limit, prototype and duplicated keys, every field of every schema with every
 * wrong type); these may be valid, so a served request counts as structured, and the same after-batch checks run.
 * Both parts also require that the server logged no fatal line (its last-resort uncaughtException handler).
 */
import { ERROR_TABLE } from '../../src/server/errors.ts';
import { knownCode } from '../lib/hostile.ts';
import { completion } from '../lib/http.ts';
import {
  CaseFactory,
  categoryAt,
  type Category,
  type FuzzCase,
  HTTP_MIX,
  type HttpCase,
  type Limits,
  WS_MIX,
  type WsCase,
} from '../lib/fuzz-cases.ts';
import { fixed } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario } from '../lib/result.ts';
import { Dist } from '../../src/lib/stats.ts';
import { type Frame, WsConn } from '../lib/ws.ts';
import { hostileRunner, type HostileVerdict } from './fuzz-hostile.ts';

const ANSWER_TIMEOUT_MS = 5_000;
/** Frames read at most while skipping a generation's own frames (a generation has at most max_tokens of them). */
const MAX_FRAMES = 2_000;

function plan(quick: boolean) {
  return quick
    ? { inputs: 600, batch: 200, hostile: 1_000, hostileBatch: 500, httpWorkers: 4, sockets: 4 }
    : { inputs: 10_000, batch: 500, hostile: 100_000, hostileBatch: 5_000, httpWorkers: 4, sockets: 4 };
}

/** Limits of the server this scenario starts (small, so oversized and over-long inputs are cheap to send). */
// max completion tokens 8: a hostile input that turns out valid costs at most 8 tokens.
const SPAWN_LIMITS: Limits = {
  maxPromptTokens: 64,
  maxPromptChars: 64 * 64,
  maxBodyBytes: 65_536,
  wsMaxFrameBytes: 65_536,
  maxCompletionTokens: 8,
  maxK: 8,
};
/** Hostile nesting goes this deep here (the unit tests go to 1,000,000 against larger frame limits). */
const HOSTILE_MAX_DEPTH = 10_000;
const HOSTILE_SEED = 20261201;
/** The server's defaults (a --url server is assumed to run with them). */
const DEFAULT_LIMITS: Limits = {
  maxPromptTokens: 896,
  maxPromptChars: 896 * 64,
  maxBodyBytes: 1_048_576,
  wsMaxFrameBytes: 1_048_576,
  maxCompletionTokens: 512,
  maxK: 8,
};

interface Verdict {
  c: FuzzCase;
  ok: boolean;
  /** What came back: `400 invalid_json`, `frame error/invalid_frame`, `close 1009`… */
  answer: string;
  why?: string;
  ms: number;
}

async function sendHttp(url: string, c: HttpCase): Promise<Verdict> {
  const t0 = performance.now();
  const init: RequestInit & { duplex?: 'half' } = { method: c.method, headers: { 'content-type': 'application/json' } };
  if (c.body) {
    if (c.chunked) {
      const body = c.body;
      init.body = new ReadableStream({
        start(ctl) {
          for (let o = 0; o < body.length; o += 16_384) ctl.enqueue(body.subarray(o, o + 16_384));
          ctl.close();
        },
      });
      init.duplex = 'half';
    } else {
      init.body = c.body;
    }
  }
  let status = 0;
  let text = '';
  try {
    const res = await fetch(`${url}${c.path}`, { ...init, signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
    status = res.status;
    text = await res.text();
  } catch (e) {
    return {
      c,
      ok: false,
      answer: 'no answer',
      why: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      ms: performance.now() - t0,
    };
  }
  const ms = performance.now() - t0;
  let env: { error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } };
  try {
    env = JSON.parse(text) as typeof env;
  } catch {
    return { c, ok: false, answer: `${status} (not JSON)`, why: text.slice(0, 120), ms };
  }
  const e = env.error;
  const answer = `${status} ${String(e?.code)}`;
  if (status < 400) return { c, ok: false, answer, why: 'accepted (a malformed input was served)', ms };
  if (!e || typeof e.message !== 'string' || e.message === '' || typeof e.type !== 'string' || !('param' in e)) {
    return { c, ok: false, answer, why: `not an error envelope: ${text.slice(0, 120)}`, ms };
  }
  if (!knownCode(e.code)) return { c, ok: false, answer, why: 'unknown error code', ms };
  if (e.code === 'internal') return { c, ok: false, answer, why: `internal error: ${e.message}`, ms };
  const spec = ERROR_TABLE[e.code];
  if (spec.status !== status || spec.type !== e.type)
    return { c, ok: false, answer, why: `status/type do not match the error table (${spec.status} ${spec.type})`, ms };
  return { c, ok: true, answer, ms };
}

/** One socket's sequential fuzzing: send, read the answer, reconnect after an expected close. */
class WsFuzzer {
  private conn: WsConn | null = null;
  constructor(private readonly wsUrl: string) {}

  private async socket(): Promise<WsConn> {
    if (!this.conn || !this.conn.isOpen) this.conn = await WsConn.open(this.wsUrl);
    return this.conn;
  }

  async send(c: WsCase): Promise<Verdict> {
    const conn = await this.socket();
    const t0 = performance.now();
    if (c.duplicateOf) return this.duplicate(conn, c, t0);
    conn.sendRaw(c.data, c.binary);
    const { frame } = await conn.nextUnrouted(ANSWER_TIMEOUT_MS);
    const ms = performance.now() - t0;
    if (!frame) {
      const closed = conn.closeInfo ?? (await Promise.race([conn.closed, new Promise<null>((r) => setTimeout(() => r(null), 1_000))]));
      if (!closed) return { c, ok: false, answer: 'no answer', why: `nothing within ${ANSWER_TIMEOUT_MS} ms`, ms };
      const answer = `close ${closed.code}`;
      if ('close' in c.expect && closed.code === c.expect.close) return { c, ok: true, answer, ms };
      return {
        c,
        ok: false,
        answer,
        why: `socket closed (${closed.reason || 'no reason'}) instead of ${'close' in c.expect ? `close ${c.expect.close}` : 'an error frame'}`,
        ms,
      };
    }
    return this.judge(conn, c, frame, ms);
  }

  private async judge(conn: WsConn, c: WsCase, f: Frame, ms: number): Promise<Verdict> {
    const answer = `frame ${f.type}${f.type === 'error' ? `/${String(f['code'])}` : ''}`;
    if (f.type !== 'error') {
      // A generation started (or something else came back): stop it so it does not pollute the next answers.
      if (typeof f.id === 'string') await this.drain(conn, f.id);
      return { c, ok: false, answer, why: 'not an error frame', ms };
    }
    if ('close' in c.expect) return { c, ok: false, answer, why: `expected close ${c.expect.close}`, ms };
    if (!knownCode(f['code']) || f['code'] === 'internal')
      return { c, ok: false, answer, why: `code ${String(f['code'])}: ${String(f['message'])}`, ms };
    if (typeof f['message'] !== 'string' || f['message'] === '') return { c, ok: false, answer, why: 'no message', ms };
    if (c.expect.id !== undefined && f.id !== c.expect.id)
      return { c, ok: false, answer, why: `id ${String(f.id)} instead of ${c.expect.id}`, ms };
    return { c, ok: true, answer, ms };
  }

  /** Cancels generation `id` and reads frames until its final one. */
  private async drain(conn: WsConn, id: string): Promise<void> {
    conn.cancel(id);
    for (let i = 0; i < MAX_FRAMES; i++) {
      const { frame } = await conn.nextUnrouted(ANSWER_TIMEOUT_MS);
      if (!frame || (frame.id === id && (frame.type === 'done' || frame.type === 'error'))) return;
    }
  }

  /** duplicate_id: a valid generation first, then the same id again; its start/token frames are skipped. */
  private async duplicate(conn: WsConn, c: WsCase, t0: number): Promise<Verdict> {
    const id = c.duplicateOf!;
    conn.sendRaw(c.data);
    conn.sendRaw(c.data);
    for (let i = 0; ; i++) {
      if (i === MAX_FRAMES)
        return { c, ok: false, answer: 'no answer', why: `no error frame within ${MAX_FRAMES} frames`, ms: performance.now() - t0 };
      const { frame } = await conn.nextUnrouted(ANSWER_TIMEOUT_MS);
      const ms = performance.now() - t0;
      if (!frame) return { c, ok: false, answer: 'no answer', why: 'no error frame for the duplicate', ms };
      if (frame.id === id && (frame.type === 'start' || frame.type === 'token')) continue;
      if (frame.id === id && frame.type === 'done')
        return { c, ok: false, answer: 'frame done', why: 'the original finished without an error for the duplicate', ms };
      const v = await this.judge(conn, c, frame, ms);
      await this.drain(conn, id);
      return v;
    }
  }

  async close(): Promise<void> {
    await this.conn?.close();
  }
}

export const fuzz: Scenario = {
  name: 'fuzz',
  summary:
    'malformed and structure-aware hostile inputs over HTTP and WebSocket: zero crashes, every one a structured answer, a valid request succeeds after each batch',
  serverFlags: () => [
    '--max-prompt-tokens',
    String(SPAWN_LIMITS.maxPromptTokens),
    '--max-body-bytes',
    String(SPAWN_LIMITS.maxBodyBytes),
    '--ws-max-frame-bytes',
    String(SPAWN_LIMITS.wsMaxFrameBytes),
    '--max-completion-tokens',
    String(SPAWN_LIMITS.maxCompletionTokens),
    '--max-queue',
    '64',
  ],
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    const p = plan(quick);
    const limits = server.spawned ? SPAWN_LIMITS : DEFAULT_LIMITS;
    const factory = new CaseFactory(limits);
    const verdicts: Verdict[] = [];
    const batches: {
      batch: number;
      inputs: number;
      failed: number;
      alive: boolean;
      health: boolean;
      validHttp: boolean;
      validWs: boolean;
    }[] = [];
    let httpIndex = 0;
    let wsIndex = 0;
    const fuzzers = Array.from({ length: p.sockets }, () => new WsFuzzer(server.wsUrl));
    /** After a batch: still alive, still healthy, still serving. */
    const afterBatch = async (id: string, b: number) => {
      const alive = server.alive();
      const health = await fetch(`${server.url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      const h = await completion(server.url, fixed(b, 4));
      const validHttp = h.status === 'done' && h.finishReason === 'length' && h.tokens === 4;
      const conn = await WsConn.open(server.wsUrl).catch(() => null);
      const w = conn ? await conn.generate(id, fixed(b, 4), { timeoutMs: 30_000 }) : null;
      await conn?.close();
      const validWs = w?.status === 'done' && w.finishReason === 'length' && w.tokens === 4;
      return { alive, health, validHttp, validWs: validWs === true };
    };

    for (let b = 0; b * p.batch < p.inputs; b++) {
      const n = Math.min(p.batch, p.inputs - b * p.batch);
      const httpCases: HttpCase[] = [];
      const wsCases: WsCase[] = [];
      for (let k = 0; k < n; k++) {
        if (k % 2 === 0) {
          const { category, nth } = categoryAt(HTTP_MIX, httpIndex++);
          httpCases.push(factory.http(category, nth));
        } else {
          const { category, nth } = categoryAt(WS_MIX, wsIndex++);
          wsCases.push(factory.ws(category, nth));
        }
      }
      const batchVerdicts: Verdict[] = [];
      let hi = 0;
      let wi = 0;
      await Promise.all([
        ...Array.from({ length: p.httpWorkers }, async () => {
          while (hi < httpCases.length) batchVerdicts.push(await sendHttp(server.url, httpCases[hi++]!));
        }),
        ...fuzzers.map(async (f) => {
          while (wi < wsCases.length) batchVerdicts.push(await f.send(wsCases[wi++]!));
        }),
      ]);
      verdicts.push(...batchVerdicts);
      const after = await afterBatch(`valid-${b}`, b);
      const failed = batchVerdicts.filter((v) => !v.ok).length;
      batches.push({ batch: b + 1, inputs: n, failed, ...after });
      log(
        `batch ${b + 1}: ${n} inputs, ${failed} without a structured error; alive ${after.alive}, health ${after.health}, valid HTTP ${after.validHttp}, valid WS ${after.validWs}`,
      );
      if (!after.alive) break;
    }
    await Promise.all(fuzzers.map((f) => f.close()));

    // Part 2: structure-aware hostile inputs.
    const hostile = hostileRunner({
      url: server.url,
      wsUrl: server.wsUrl,
      limits,
      httpWorkers: p.httpWorkers,
      sockets: p.sockets,
      maxDeep: HOSTILE_MAX_DEPTH,
    });
    const hostileVerdicts: HostileVerdict[] = [];
    const hostileBatches: typeof batches = [];
    for (let b = 0; b * p.hostileBatch < p.hostile && server.alive(); b++) {
      const n = Math.min(p.hostileBatch, p.hostile - b * p.hostileBatch);
      const vs = await hostile.batch(n, HOSTILE_SEED + b);
      hostileVerdicts.push(...vs);
      const after = await afterBatch(`valid-h${b}`, b);
      const failed = vs.filter((v) => !v.ok).length;
      hostileBatches.push({ batch: b + 1, inputs: vs.length, failed, ...after });
      log(
        `hostile batch ${b + 1} (seed ${HOSTILE_SEED + b}): ${vs.length} inputs, ${failed} without a structured answer; alive ${after.alive}, health ${after.health}`,
      );
    }
    await hostile.close();
    const hostileFailures = hostileVerdicts.filter((v) => !v.ok);
    const hostileAnswers: Record<string, number> = {};
    for (const v of hostileVerdicts) {
      const key = `${v.transport} ${v.answer}`;
      hostileAnswers[key] = (hostileAnswers[key] ?? 0) + 1;
    }
    const fatalLogs = server.errorLogs().filter((l) => l.includes('"level":60'));

    const categories = [...new Set(verdicts.map((v) => `${v.c.transport} ${v.c.category}`))].sort();
    const rows = categories.map((key) => {
      const vs = verdicts.filter((v) => `${v.c.transport} ${v.c.category}` === key);
      const answers: Record<string, number> = {};
      for (const v of vs) answers[v.answer] = (answers[v.answer] ?? 0) + 1;
      const top = Object.entries(answers)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([a, k]) => `${a} ×${k}`)
        .join(', ');
      return {
        input: key,
        sent: vs.length,
        structured: vs.filter((v) => v.ok).length,
        failed: vs.filter((v) => !v.ok).length,
        answers: top,
      };
    });
    const failures = verdicts.filter((v) => !v.ok);
    const distinct = new Map<string, Verdict>();
    for (const v of failures)
      if (!distinct.has(`${v.c.transport}|${v.c.label}|${v.answer}`)) distinct.set(`${v.c.transport}|${v.c.label}|${v.answer}`, v);
    const latency = { http: new Dist(), ws: new Dist() };
    for (const v of verdicts) latency[v.c.transport].record(v.ms);
    const hostileDist = (t: 'http' | 'ws') => {
      const d = new Dist();
      for (const v of hostileVerdicts) if (v.transport === t) d.record(v.ms);
      return d;
    };
    const crashed = [...batches, ...hostileBatches].some((b) => !b.alive || !b.health);
    const categoryCounts = (t: 'http' | 'ws') => {
      const out: Partial<Record<Category, number>> = {};
      for (const v of verdicts) if (v.c.transport === t) out[v.c.category] = (out[v.c.category] ?? 0) + 1;
      return out;
    };
    return {
      bars: [
        bar('malformed inputs sent', verdicts.length, '==', p.inputs),
        bar('server crashes (process gone or /health failing after a batch)', crashed ? 1 : 0, '==', 0),
        bar(
          'inputs not answered by a structured error',
          failures.length,
          '==',
          0,
          '',
          [...distinct.values()]
            .slice(0, 3)
            .map((v) => `${v.c.transport} ${v.c.label} → ${v.answer}${v.why ? ` (${v.why})` : ''}`)
            .join('; ') || undefined,
        ),
        bar('batches after which a valid HTTP request failed', batches.filter((b) => !b.validHttp).length, '==', 0),
        bar('batches after which a valid WebSocket generation failed', batches.filter((b) => !b.validWs).length, '==', 0),
        bar('structure-aware hostile inputs sent', hostileVerdicts.length, '>=', p.hostile),
        bar(
          'hostile inputs without a structured answer (5xx, internal, no answer, unexpected close)',
          hostileFailures.length,
          '==',
          0,
          '',
          hostileFailures
            .slice(0, 3)
            .map((v) => `${v.transport} ${v.label} → ${v.answer}${v.why ? ` (${v.why.slice(0, 120)})` : ''}`)
            .join('; ') || undefined,
        ),
        bar('hostile batches after which a valid request failed', hostileBatches.filter((b) => !b.validHttp || !b.validWs).length, '==', 0),
        bar('fatal lines in the server log (uncaught exceptions)', fatalLogs.length, '==', 0, '', fatalLogs[0]?.slice(0, 200)),
      ],
      figures: {
        inputs: verdicts.length,
        batch_size: p.batch,
        batches: batches.length,
        http: categoryCounts('http'),
        ws: categoryCounts('ws'),
        answer_ms: { http: latency.http.summary(), ws: latency.ws.summary() },
        limits,
        failures: [...distinct.values()]
          .slice(0, 50)
          .map((v) => ({ transport: v.c.transport, category: v.c.category, label: v.c.label, answer: v.answer, why: v.why })),
        failure_count: failures.length,
        hostile: {
          inputs: hostileVerdicts.length,
          batch_size: p.hostileBatch,
          seed: HOSTILE_SEED,
          max_depth: HOSTILE_MAX_DEPTH,
          answers: hostileAnswers,
          answer_ms: { http: hostileDist('http').summary(), ws: hostileDist('ws').summary() },
          failures: hostileFailures.slice(0, 50).map((v) => ({ transport: v.transport, label: v.label, answer: v.answer, why: v.why })),
        },
      },
      tables: [
        { title: 'Fuzz inputs by transport and category', rows },
        {
          title: 'After each batch',
          rows: batches.map((b) => ({
            ...b,
            alive: String(b.alive),
            health: String(b.health),
            validHttp: String(b.validHttp),
            validWs: String(b.validWs),
          })),
        },
        {
          title: 'Structure-aware hostile inputs by answer',
          rows: Object.entries(hostileAnswers)
            .sort((a, b) => b[1] - a[1])
            .map(([answer, n]) => ({ answer, inputs: n })),
        },
      ],
      charts: [
        {
          kind: 'bar',
          title: 'Fuzz inputs and structured answers by category',
          yLabel: 'inputs',
          categories: rows.map((r) => r.input),
          series: [
            { name: 'structured error', values: rows.map((r) => r.structured) },
            { name: 'failed', values: rows.map((r) => r.failed) },
          ],
        },
        {
          kind: 'line',
          title: 'Time to the error answer',
          xLabel: 'percentile',
          yLabel: 'ms',
          x: 'percentile',
          series: [
            { name: 'HTTP', points: latency.http.curve() },
            { name: 'WebSocket', points: latency.ws.curve() },
          ],
        },
      ],
      notes: [
        `${p.inputs} inputs in batches of ${p.batch} (half HTTP over ${p.httpWorkers} connections, half WebSocket over ${p.sockets} sockets, one input at a time per socket); ` +
          `server limits: --max-prompt-tokens ${limits.maxPromptTokens}, --max-body-bytes ${limits.maxBodyBytes}, --ws-max-frame-bytes ${limits.wsMaxFrameBytes}.`,
        ...[...distinct.values()]
          .slice(0, 20)
          .map((v) => `FAILED ${v.c.transport} ${v.c.category}: ${v.c.label} → ${v.answer}${v.why ? ` (${v.why})` : ''}`),
      ],
    };
  },
};
