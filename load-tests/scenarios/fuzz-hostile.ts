/**
 * The structure-aware half of the fuzz scenario: fast-check's hostile requests (lib/hostile.ts) over HTTP and
 * the WebSocket, in seeded batches (input i of a run is reproducible from the seed and its batch). An input may
 * be valid, so a served request counts as a structured answer; a 5xx, an `internal` code, an unstructured answer,
 * a closed socket (other than 1009 for a frame over the size limit) or no answer counts as a failure.
 */
import fc from 'fast-check';
import {
  arbitraries,
  type HostileHttp,
  type HostileLimits,
  type HostileWs,
  judgeHttp,
  judgeWs,
  type Judgement,
  silentByDesign,
  type WsFrameLike,
} from '../lib/hostile.ts';
import { WsConn } from '../lib/ws.ts';

const ANSWER_TIMEOUT_MS = 10_000;
const MAX_FRAMES = 200;

export interface HostileVerdict extends Judgement {
  transport: 'http' | 'ws';
  label: string;
  ms: number;
}

export interface HostileLimitsFull extends HostileLimits {
  maxPromptTokens: number;
  maxBodyBytes: number;
  wsMaxFrameBytes: number;
}

async function sendHttp(url: string, c: HostileHttp, l: HostileLimitsFull): Promise<HostileVerdict> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}${c.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: c.body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    const j = judgeHttp(res.status, res.headers.get('content-type') ?? '', await res.text());
    const oversized = Buffer.byteLength(c.body) > l.maxBodyBytes;
    if (oversized && j.ok && !j.answer.startsWith('413'))
      return {
        ...j,
        ok: false,
        why: 'a body over --max-body-bytes was not refused with 413',
        transport: 'http',
        label: c.label,
        ms: performance.now() - t0,
      };
    return { ...j, transport: 'http', label: c.label, ms: performance.now() - t0 };
  } catch (e) {
    return {
      ok: false,
      answer: 'no answer',
      why: e instanceof Error ? e.message : String(e),
      transport: 'http',
      label: c.label,
      ms: performance.now() - t0,
    };
  }
}

/** One socket, one hostile frame at a time; reconnects after the one documented close (1009, oversized). */
class HostileWsClient {
  private conn: WsConn | null = null;
  private readonly silent;
  constructor(
    private readonly wsUrl: string,
    private readonly l: HostileLimitsFull,
  ) {
    this.silent = silentByDesign(l);
  }

  async send(c: HostileWs): Promise<HostileVerdict> {
    if (!this.conn || !this.conn.isOpen) this.conn = await WsConn.open(this.wsUrl);
    const conn = this.conn;
    const t0 = performance.now();
    const v = (j: Judgement): HostileVerdict => ({ ...j, transport: 'ws', label: c.label, ms: performance.now() - t0 });
    conn.sendRaw(c.frame);
    if (Buffer.byteLength(c.frame) > this.l.wsMaxFrameBytes) {
      const closed = await Promise.race([conn.closed, new Promise<null>((r) => setTimeout(() => r(null), ANSWER_TIMEOUT_MS))]);
      return v(
        closed?.code === 1009
          ? { ok: true, answer: 'close 1009' }
          : { ok: false, answer: `close ${closed?.code ?? 'none'}`, why: 'an oversized frame did not close with 1009' },
      );
    }
    if (this.silent(c.frame)) return v({ ok: true, answer: 'no answer (valid cancel)' });
    const frames: WsFrameLike[] = [];
    for (let i = 0; i < MAX_FRAMES; i++) {
      const { frame } = await conn.nextUnrouted(ANSWER_TIMEOUT_MS);
      if (!frame)
        return v(conn.isOpen ? judgeWs(frames) : { ok: false, answer: `close ${conn.closeInfo?.code}`, why: 'the socket closed' });
      frames.push(frame);
      const first = frames[0]!;
      if (first.type !== 'start') break; // an error frame (or something unexpected): that is the answer
      if (frame.id === first.id && (frame.type === 'done' || frame.type === 'error')) break;
    }
    return v(judgeWs(frames));
  }

  async close(): Promise<void> {
    await this.conn?.close();
  }
}

export interface HostileBatch {
  verdicts: HostileVerdict[];
}

/**
 * Runs `n` hostile inputs (half HTTP, half WebSocket) drawn with `seed`, over `httpWorkers` connections and
 * `sockets` sockets. Deep inputs are capped at `maxDeep` levels so that most fit the spawned server's size limits.
 */
export function hostileRunner(opts: {
  url: string;
  wsUrl: string;
  limits: HostileLimitsFull;
  httpWorkers: number;
  sockets: number;
  maxDeep: number;
}) {
  const arbs = arbitraries(opts.limits, { maxDeep: opts.maxDeep });
  const clients = Array.from({ length: opts.sockets }, () => new HostileWsClient(opts.wsUrl, opts.limits));
  return {
    async batch(n: number, seed: number): Promise<HostileVerdict[]> {
      const httpCases = fc.sample(arbs.http, { numRuns: Math.ceil(n / 2), seed });
      const wsCases = fc.sample(arbs.ws, { numRuns: Math.floor(n / 2), seed: seed ^ 0x5bd1e995 });
      const out: HostileVerdict[] = [];
      let hi = 0;
      let wi = 0;
      await Promise.all([
        ...Array.from({ length: opts.httpWorkers }, async () => {
          while (hi < httpCases.length) out.push(await sendHttp(opts.url, httpCases[hi++]!, opts.limits));
        }),
        ...clients.map(async (client) => {
          while (wi < wsCases.length) out.push(await client.send(wsCases[wi++]!));
        }),
      ]);
      return out;
    },
    close: () => Promise.all(clients.map((c) => c.close())),
  };
}
