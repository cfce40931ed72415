/**
 * WebSocket load client: sockets that multiplex generations by id, timing every frame on arrival
 * (performance.now() in the 'message' handler), and a generator that keeps N sockets × M generations in flight.
 *
 * Client-side timings follow the server's definitions (docs/protocol.md): TTFT is send → the first `token`
 * frame; each frame's first token carries the gap since the previous token frame and the step's other tokens a
 * gap of 0, so the client's series is directly comparable with the server's `itl_ms_series`.
 */
import { WebSocket } from 'ws';

export type Frame = { type: string; id?: string; [k: string]: unknown };

export interface GenParams {
  prompt?: string;
  messages?: { role: string; content: string }[];
  max_tokens?: number;
  ignore_eos?: boolean;
  [k: string]: unknown;
}

export interface StreamResult {
  id: string;
  transport: 'ws' | 'http' | 'sse';
  /** performance.now() when the request left. */
  sentAt: number;
  /** done: a final frame/chunk arrived; error: refused with an error frame / status; closed: the connection
   *  went away first; aborted: the client vanished on purpose; timeout: nothing final within the time limit. */
  status: 'done' | 'error' | 'closed' | 'aborted' | 'timeout';
  /** Send → admission (WS `start`, HTTP response headers). */
  admitMs: number | null;
  ttftMs: number | null;
  /** Every inter-token gap, ms (WS: per token, in-step tokens 0; SSE: per text chunk). */
  gapsMs: number[];
  tokens: number;
  e2eMs: number | null;
  finishReason: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** HTTP status (HTTP transports). */
  httpStatus?: number;
  /** The server's id of an HTTP stream (`cmpl-…`), as in /v1/streams/recent. */
  serverId?: string;
  /** Retry-After of an HTTP refusal. */
  retryAfter?: string | null;
  /** Send → the refusal (error frame / non-2xx headers), for rejection latency. */
  rejectMs: number | null;
  /** The server's final frame (WS `done`) or finish chunk's `specd` object. */
  final?: Record<string, unknown>;
}

export function newResult(id: string, transport: StreamResult['transport'], sentAt: number): StreamResult {
  return {
    id,
    transport,
    sentAt,
    status: 'timeout',
    admitMs: null,
    ttftMs: null,
    gapsMs: [],
    tokens: 0,
    e2eMs: null,
    finishReason: null,
    errorCode: null,
    errorMessage: null,
    rejectMs: null,
  };
}

interface Pending {
  result: StreamResult;
  lastTokenAt: number;
  onFrame: ((f: Frame, r: StreamResult) => void) | undefined;
  resolve: (r: StreamResult) => void;
  timer: NodeJS.Timeout | undefined;
}

export class WsConn {
  private readonly pending = new Map<string, Pending>();
  /** Frames that matched no in-flight generation (frame-level errors without an id, …). */
  private unroutedWaiters: ((f: Frame | null, at: number) => void)[] = [];
  readonly unrouted: Frame[] = [];
  closeInfo: { code: number; reason: string; at: number } | null = null;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', () => {
      /* reported through close */
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        const at = performance.now();
        this.closeInfo = { code, reason: reason.toString(), at };
        for (const [id, p] of this.pending) this.finish(id, p, p.result.status === 'aborted' ? 'aborted' : 'closed', at);
        for (const w of this.unroutedWaiters.splice(0)) w(null, at);
        resolve(this.closeInfo);
      });
    });
  }

  static open(url: string, timeoutMs = 10_000): Promise<WsConn> {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.removeAllListeners('error');
        resolve(new WsConn(ws));
      });
      ws.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const at = performance.now();
    let f: Frame;
    try {
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      f = JSON.parse(text) as Frame;
    } catch {
      f = { type: '<unparseable>', binary: isBinary };
    }
    const p = typeof f.id === 'string' ? this.pending.get(f.id) : undefined;
    if (!p) {
      const w = this.unroutedWaiters.shift();
      if (w) w(f, at);
      else this.unrouted.push(f);
      return;
    }
    const r = p.result;
    switch (f.type) {
      case 'start':
        r.admitMs = at - r.sentAt;
        break;
      case 'token': {
        const n = Array.isArray(f['tokens']) ? (f['tokens'] as unknown[]).length : 0;
        if (n > 0) {
          if (r.ttftMs === null) r.ttftMs = at - r.sentAt;
          else r.gapsMs.push(at - p.lastTokenAt);
          for (let i = 1; i < n; i++) r.gapsMs.push(0);
          r.tokens += n;
          p.lastTokenAt = at;
        }
        break;
      }
      case 'done':
        r.finishReason = typeof f['finish_reason'] === 'string' ? f['finish_reason'] : null;
        r.final = f;
        break;
      case 'error':
        r.errorCode = typeof f['code'] === 'string' ? f['code'] : '<none>';
        r.errorMessage = typeof f['message'] === 'string' ? f['message'] : null;
        r.rejectMs = at - r.sentAt;
        r.final = f;
        break;
      default:
        break;
    }
    p.onFrame?.(f, r);
    if (f.type === 'done') this.finish(f.id!, p, 'done', at);
    else if (f.type === 'error') this.finish(f.id!, p, 'error', at);
  }

  private finish(id: string, p: Pending, status: StreamResult['status'], at: number): void {
    if (this.pending.get(id) !== p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.result.status = status;
    p.result.e2eMs = at - p.result.sentAt;
    p.resolve(p.result);
  }

  /** Starts a generation and resolves with its result when its final frame (or the socket's close) arrives. */
  generate(
    id: string,
    params: GenParams,
    opts: { onFrame?: (f: Frame, r: StreamResult) => void; timeoutMs?: number } = {},
  ): Promise<StreamResult> {
    if (this.pending.has(id)) throw new Error(`generation ${id} already in flight on this socket`);
    return new Promise((resolve) => {
      const result = newResult(id, 'ws', performance.now());
      const p: Pending = { result, lastTokenAt: 0, onFrame: opts.onFrame, resolve, timer: undefined };
      this.pending.set(id, p);
      if (opts.timeoutMs) {
        p.timer = setTimeout(() => this.finish(id, p, 'timeout', performance.now()), opts.timeoutMs);
        p.timer.unref();
      }
      if (!this.isOpen) {
        this.finish(id, p, 'closed', performance.now());
        return;
      }
      result.sentAt = performance.now();
      this.ws.send(JSON.stringify({ type: 'generate', id, ...params }));
    });
  }

  cancel(id: string): void {
    if (this.isOpen) this.ws.send(JSON.stringify({ type: 'cancel', id }));
  }

  /** Marks every in-flight generation as deliberately abandoned (the disconnect storm), then closes / terminates. */
  vanish(how: 'close' | 'terminate'): void {
    for (const p of this.pending.values()) p.result.status = 'aborted';
    if (how === 'close') this.ws.close(1000, 'client gone');
    else this.ws.terminate();
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next frame that belongs to no generation, or null if the socket closes first / nothing arrives in time. */
  nextUnrouted(timeoutMs: number): Promise<{ frame: Frame | null; at: number }> {
    const queued = this.unrouted.shift();
    if (queued) return Promise.resolve({ frame: queued, at: performance.now() });
    if (!this.isOpen) return Promise.resolve({ frame: null, at: performance.now() });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.unroutedWaiters = this.unroutedWaiters.filter((w) => w !== waiter);
        resolve({ frame: null, at: performance.now() });
      }, timeoutMs);
      const waiter = (frame: Frame | null, at: number) => {
        clearTimeout(timer);
        resolve({ frame, at });
      };
      this.unroutedWaiters.push(waiter);
    });
  }

  close(): Promise<unknown> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.ws.close(1000);
    return Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]).then(() => this.ws.terminate());
  }
}

export interface GeneratorOptions {
  wsUrl: string;
  /** Sockets opened. */
  sockets: number;
  /** Generations in flight on each socket. */
  perSocket: number;
  /** Generations in all (bounded). */
  total: number;
  /** Parameters of generation i. */
  params: (i: number) => GenParams;
  /** Client ids: `${idPrefix}${i}`. */
  idPrefix: string;
  /** Stop starting new generations after this long (bounded in time as well as in count). */
  deadlineMs?: number;
  timeoutMs?: number;
}

/** N sockets × M concurrent generations, each slot starting its next generation as soon as the previous ends. */
export async function runWsGenerator(opts: GeneratorOptions): Promise<{ results: StreamResult[]; wallMs: number }> {
  const conns = await Promise.all(Array.from({ length: opts.sockets }, () => WsConn.open(opts.wsUrl)));
  const results: StreamResult[] = [];
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + (opts.deadlineMs ?? 600_000);
  const slot = async (conn: WsConn) => {
    while (next < opts.total && performance.now() < deadline) {
      const i = next++;
      results.push(await conn.generate(`${opts.idPrefix}${i}`, opts.params(i), { timeoutMs: opts.timeoutMs ?? 120_000 }));
    }
  };
  await Promise.all(conns.flatMap((c) => Array.from({ length: opts.perSocket }, () => slot(c))));
  const wallMs = performance.now() - t0;
  await Promise.all(conns.map((c) => c.close()));
  return { results, wallMs };
}
