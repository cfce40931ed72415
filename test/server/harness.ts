/** Starts the real HTTP + WebSocket server on an ephemeral port with a FakeEngine; a small WS client. */
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { WebSocket } from 'ws';
import { configFrom, type ConfigKey } from '../../src/config/index.ts';
import { createEngine, type SpecEngine } from '../../src/engine/index.ts';
import type { Engine } from '../../src/engine/types.ts';
import { createMetrics, type Metrics } from '../../src/metrics/index.ts';
import { type DoneFrame, type ServerFrame, ServerFrameSchema } from '../../src/protocol/index.ts';
import { createServer, type SpecdServer, StreamRecorder } from '../../src/server/index.ts';
import { FakeEngine, type FakeEngineOptions } from '../helpers/fake-engine.ts';
import { engineOptions } from '../helpers/models.ts';

export interface Harness<E extends Engine = FakeEngine> {
  server: SpecdServer;
  engine: E;
  metrics: Metrics;
  recorder: StreamRecorder;
  url: string;
  wsUrl: string;
  close(): Promise<void>;
}

export async function startServer(
  opts: {
    fake?: FakeEngineOptions;
    engine?: Engine;
    config?: Partial<Record<ConfigKey, unknown>>;
    flushMs?: number;
  } = {},
): Promise<Harness> {
  const engine = (opts.engine ?? new FakeEngine(opts.fake)) as FakeEngine;
  const config = configFrom({ port: 0, wsHeartbeatMs: 0, shutdownGraceMs: 1000, ...opts.config });
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics({ stats: () => engine.stats(), workerRestarts: () => engine.health().workerRestarts });
  const recorder = new StreamRecorder({ capacity: config.recentStreams, logPath: config.streamLogPath, logger });
  const server = createServer({ engine, config, metrics, recorder, logger }, { flushMs: opts.flushMs ?? 1000 });
  const { url } = await server.listen(0, '127.0.0.1');
  return {
    server,
    engine,
    metrics,
    recorder,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/stream`,
    close: () => server.shutdown(0),
  };
}

/** A test WebSocket client that records every frame and validates it against the server-frame schema. */
export class WsClient {
  readonly frames: ServerFrame[] = [];
  readonly invalid: unknown[] = [];
  private waiters: { pred: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  closeCode: number | null = null;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const parsed = ServerFrameSchema.safeParse(JSON.parse(String(data)));
      if (!parsed.success) {
        this.invalid.push(String(data));
        return;
      }
      this.frames.push(parsed.data);
      this.waiters = this.waiters.filter((w) => (w.pred(parsed.data) ? (w.resolve(parsed.data), false) : true));
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
  }

  static open(url: string, options?: WebSocket.ClientOptions): Promise<WsClient> {
    const ws = new WebSocket(url, options);
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame (already received or future) matching pred. */
  waitFor(pred: (f: ServerFrame) => boolean, timeoutMs = 5000): Promise<ServerFrame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  /** The final frame (done or error) of a generation. */
  final(id: string, timeoutMs?: number): Promise<ServerFrame> {
    return this.waitFor((f) => 'id' in f && f.id === id && (f.type === 'done' || f.type === 'error'), timeoutMs);
  }

  async done(id: string): Promise<DoneFrame> {
    const f = await this.final(id);
    if (f.type !== 'done') throw new Error(`expected done for ${id}, got ${JSON.stringify(f)}`);
    return f;
  }

  of(id: string): ServerFrame[] {
    return this.frames.filter((f) => 'id' in f && f.id === id);
  }

  close(): Promise<number> {
    this.ws.close();
    return this.closed;
  }
}

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Reads a metric's value from Prometheus text (labels given as they appear, e.g. `{mode="target"}`). */
export function metricValue(text: string, name: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : null;
}

/**
 * The server on the real engine and the bundled models, for the suite it is called in: started before its tests
 * and closed after them. Returns the harness (available once the suite's beforeAll has run).
 */
export function realEngineServer(): () => Harness<SpecEngine> {
  let h: Harness<SpecEngine> | undefined;
  beforeAll(async () => {
    const engine = await createEngine(engineOptions({ threads: 1, maxRunning: 4, maxQueue: 8, maxPromptTokens: 512 }));
    h = (await startServer({ engine })) as unknown as Harness<SpecEngine>;
  });
  afterAll(async () => {
    await h?.close();
    await h?.engine.close();
  });
  return () => h!;
}
