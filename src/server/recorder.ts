import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from 'pino';
import type { DoneEvent, Mode } from '../engine/index.ts';
import { round } from '../lib/stats.ts';
import type { WireFinishReason } from '../protocol/index.ts';
import { type StreamStatsWire, wireStats } from './stream-summary.ts';

/** One finished stream as GET /v1/streams/recent and the JSONL stream log show it. */
export interface StreamRecord extends StreamStatsWire {
  /** Server-assigned id (the HTTP response id, or `ws-…` for socket streams). */
  id: string;
  /** The client's id of a WebSocket generation. */
  client_id?: string;
  transport: 'http' | 'ws';
  endpoint: string;
  /** Unix seconds at submission. */
  created: number;
  model: string | null;
  mode: Mode;
  seed: number | null;
  finish_reason: WireFinishReason;
  error?: { code: string; message: string };
  prefill_ms: number;
  /** Every inter-token gap in ms, in order (see docs/protocol.md for how a step's tokens appear). */
  itl_ms_series: number[];
  drafts: number;
  rejections: number;
  accepted_per_position: number[];
}

export interface StreamMeta {
  id: string;
  clientId?: string;
  transport: 'http' | 'ws';
  endpoint: string;
  created: number;
}

export function toRecord(
  meta: StreamMeta,
  start: { mode: Mode; seed: number | null; model: string | null },
  done: DoneEvent,
): StreamRecord {
  return {
    id: meta.id,
    ...(meta.clientId !== undefined ? { client_id: meta.clientId } : {}),
    transport: meta.transport,
    endpoint: meta.endpoint,
    created: meta.created,
    model: start.model,
    mode: start.mode,
    seed: start.seed,
    finish_reason: done.finishReason,
    ...(done.error ? { error: done.error } : {}),
    ...wireStats(done),
    prefill_ms: round(done.timings.prefillMs),
    itl_ms_series: done.timings.itlMs.map((v) => round(v)),
    drafts: done.speculative.drafts,
    rejections: done.speculative.rejections,
    accepted_per_position: [...done.speculative.acceptedPerPosition],
  };
}

/**
 * Keeps the last `capacity` finished streams in a ring and, with a log path, appends one JSON line per stream
 * through a write stream (never a sync write on the event loop; lines are dropped, with a warning, if the disk
 * cannot keep up beyond the stream's buffer).
 */
export class StreamRecorder {
  private readonly ring: (StreamRecord | undefined)[];
  private next = 0;
  private count = 0;
  private log: WriteStream | null = null;
  private logBroken = false;

  constructor(private readonly opts: { capacity: number; logPath?: string | undefined; logger?: Logger }) {
    this.ring = new Array<StreamRecord | undefined>(opts.capacity);
  }

  add(record: StreamRecord): void {
    if (this.opts.capacity > 0) {
      this.ring[this.next] = record;
      this.next = (this.next + 1) % this.opts.capacity;
      this.count = Math.min(this.count + 1, this.opts.capacity);
    }
    this.append(record);
  }

  /** Newest first, at most `limit`. */
  recent(limit = this.opts.capacity): StreamRecord[] {
    const out: StreamRecord[] = [];
    const n = Math.min(limit, this.count);
    for (let i = 1; i <= n; i++) {
      const r = this.ring[(this.next - i + this.opts.capacity) % this.opts.capacity];
      if (r) out.push(r);
    }
    return out;
  }

  private append(record: StreamRecord): void {
    if (!this.opts.logPath || this.logBroken) return;
    if (!this.log) {
      this.log = createWriteStream(this.opts.logPath, { flags: 'a' });
      this.log.on('error', (e) => {
        this.logBroken = true;
        this.opts.logger?.error({ err: e, path: this.opts.logPath }, 'stream log disabled after a write error');
      });
    }
    if (this.log.writableLength > 16 * 1024 * 1024) {
      this.opts.logger?.warn({ id: record.id }, 'stream log is behind by 16 MiB; dropping a line');
      return;
    }
    this.log.write(`${JSON.stringify(record)}\n`);
  }

  /** Flushes and closes the log. */
  close(): Promise<void> {
    const log = this.log;
    this.log = null;
    if (!log || log.destroyed) return Promise.resolve();
    return new Promise((resolve) => log.end(resolve));
  }
}
