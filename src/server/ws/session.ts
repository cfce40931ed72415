import { WebSocket } from 'ws';
import type { EngineEvent } from '../../engine/index.ts';
import { sleep } from '../../lib/async.ts';
import { round } from '../../lib/stats.ts';
import {
  chatLogprobsCount,
  CLIENT_FRAME_TYPES,
  type ClientFrame,
  clientFrameSchema,
  describeIssue,
  type GenerateFrame,
  parseClientJson,
  previewValue,
  type ServerFrame,
} from '../../protocol/index.ts';
import type { ServerContext } from '../context.ts';
import { ApiError, toApiError } from '../errors.ts';
import { wireRoute, wireStats } from '../stream-summary.ts';
import { toGenerateRequest } from '../to-engine.ts';

const DRAIN_POLL_MS = 5;
let sessionSeq = 0;

/**
 * One WebSocket connection: any number of generations (up to wsMaxStreams in flight) multiplexed by the
 * client's `id`.
 *
 * Backpressure: every frame is sent from the `for await` over the stream's engine events, and before each send
 * the loop waits while the socket holds more than wsBufferedLimitBytes unsent. The worker keeps at most two steps
 * of a stream queued ahead of its reader, so a slow reader costs a couple of steps of frames per stream, never
 * unbounded memory.
 *
 * Fault boundary: whatever the frame handler or a stream's event handling throws becomes one `error` frame
 * (code `internal`, logged once with its stack and counted) for that frame or that generation; the socket stays
 * open and the other generations on it go on.
 */
export class WsSession {
  readonly seq = ++sessionSeq;
  /** In-flight generations by client id. */
  private readonly streams = new Map<string, AbortController>();
  private readonly tasks = new Set<Promise<void>>();
  alive = true;
  private readonly clientFrame;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: ServerContext,
  ) {
    this.clientFrame = clientFrameSchema(ctx.limits);
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(data, isBinary);
      } catch (e) {
        this.internalError(e, 'websocket frame handler failed');
      }
      this.armIdleTimer();
    });
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('close', () => {
      this.disarmIdleTimer();
      this.abortAll('socket closed');
    });
    ws.on('error', (err) => ctx.logger.debug({ err, session: this.seq }, 'websocket error'));
    this.armIdleTimer();
  }

  get inFlight(): number {
    return this.streams.size;
  }

  /** Resolves when every generation of this socket has sent its final frame (or given up on a closed socket). */
  async settled(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  onClosed(listener: () => void): void {
    if (this.ws.readyState === WebSocket.CLOSED) listener();
    else this.ws.once('close', listener);
  }

  /** Heartbeat tick: false if the previous ping went unanswered (the caller terminates the socket). */
  ping(): boolean {
    if (!this.alive) return false;
    this.alive = false;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
    return true;
  }

  /** A socket with no generation in flight and no frame from its client for wsIdleTimeoutMs is closed (1000). */
  private armIdleTimer(): void {
    this.disarmIdleTimer();
    const ms = this.ctx.config.wsIdleTimeoutMs;
    if (ms <= 0 || this.streams.size > 0 || this.ws.readyState !== WebSocket.OPEN) return;
    this.idleTimer = setTimeout(() => {
      this.ctx.logger.debug({ session: this.seq, idleMs: ms }, 'closing an idle websocket');
      this.close(1000, 'idle timeout');
    }, ms).unref();
  }

  private disarmIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** The last line of the boundary: an unexpected exception becomes one error frame, logged and counted. */
  private internalError(e: unknown, what: string, id?: string): void {
    this.ctx.logger.error({ err: e, session: this.seq, id }, what);
    try {
      this.sendError(new ApiError('internal', 'internal error while handling this frame; the server logged it.'), id);
    } catch (sendErr) {
      this.ctx.logger.error({ err: sendErr, session: this.seq }, 'could not report an internal error');
    }
  }

  private abortAll(reason: string): void {
    for (const ac of this.streams.values()) ac.abort(new Error(reason));
  }

  private send(frame: ServerFrame): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private sendError(e: ApiError, id?: string): void {
    this.ctx.metrics.countError(e.code);
    this.send(e.frame(id));
  }

  private async writable(): Promise<void> {
    while (this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > this.ctx.config.wsBufferedLimitBytes) {
      await sleep(DRAIN_POLL_MS);
    }
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) {
      this.sendError(new ApiError('invalid_frame', 'Binary frames are not supported; send JSON text frames.'));
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const json = parseClientJson(text, 'frame');
    if (!json.ok) {
      this.sendError(new ApiError('invalid_json', json.message));
      return;
    }
    const frame = this.parse(json.value);
    if (!frame) return;
    if (frame.type === 'cancel') {
      this.streams.get(frame.id)?.abort(new Error('cancelled by client')); // unknown / finished ids: no-op
      return;
    }
    this.startGeneration(frame);
  }

  private parse(raw: unknown): ClientFrame | null {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      this.sendError(new ApiError('invalid_frame', 'A frame must be a JSON object with a "type".'));
      return null;
    }
    const obj = raw as Record<string, unknown>;
    const id = typeof obj['id'] === 'string' ? obj['id'] : undefined;
    if (typeof obj['type'] !== 'string' || !(CLIENT_FRAME_TYPES as readonly string[]).includes(obj['type'])) {
      const got = obj['type'] === undefined ? 'no "type"' : `type ${previewValue(obj['type'])}`;
      this.sendError(new ApiError('invalid_frame', `Unknown frame: ${got}; expected one of ${CLIENT_FRAME_TYPES.join(', ')}.`, 'type'), id);
      return null;
    }
    const parsed = this.clientFrame.safeParse(raw);
    if (!parsed.success) {
      this.sendError(ApiError.fromProblem(describeIssue(parsed.error, raw)), id);
      return null;
    }
    return parsed.data;
  }

  private startGeneration(frame: GenerateFrame): void {
    if (this.streams.has(frame.id)) {
      this.sendError(
        new ApiError('duplicate_id', `A generation with id ${JSON.stringify(frame.id)} is already in flight on this socket.`, 'id'),
        frame.id,
      );
      return;
    }
    if (this.ctx.lifecycle.shuttingDown) {
      this.sendError(new ApiError('shutting_down', 'The server is shutting down; no new generations.'), frame.id);
      return;
    }
    const cap = this.ctx.config.wsMaxStreams;
    if (this.streams.size >= cap) {
      this.sendError(
        new ApiError(
          'too_many_streams',
          `This socket already has ${cap} generations in flight (this server's ` +
            'limit per socket); wait for one to finish or open another socket.',
          'id',
          { limit: cap },
        ),
        frame.id,
      );
      return;
    }
    const ac = new AbortController();
    this.streams.set(frame.id, ac);
    this.disarmIdleTimer();
    const task = this.generate(frame, ac).finally(() => {
      this.streams.delete(frame.id);
      this.tasks.delete(task);
      this.armIdleTimer();
    });
    this.tasks.add(task);
  }

  private async generate(frame: GenerateFrame, ac: AbortController): Promise<void> {
    const input = frame.prompt !== undefined ? { prompt: frame.prompt } : { messages: frame.messages! };
    const inputParam = frame.prompt !== undefined ? 'prompt' : 'messages';
    const req = toGenerateRequest(input, frame, this.ctx.defaults, ac.signal, chatLogprobsCount(frame));
    const meta = {
      id: `ws-${this.seq}-${frame.id}`,
      clientId: frame.id,
      transport: 'ws' as const,
      endpoint: '/v1/stream',
      created: Math.floor(Date.now() / 1000),
    };
    let started = false;
    try {
      for await (const ev of this.ctx.runner.run(req, meta, inputParam)) {
        started = true;
        await this.writable();
        this.send(this.toFrame(frame.id, ev));
      }
    } catch (e) {
      // Before the first event: a refusal, normalised (and, if internal, logged) by the runner. After it: our own
      // event handling failed, and leaving the loop has stopped the stream. Either way one error frame ends this id.
      ac.abort(new Error('stream failed'));
      if (started) this.internalError(e, 'websocket stream event handling failed', frame.id);
      else this.sendError(toApiError(e, inputParam), frame.id);
    }
  }

  private toFrame(id: string, ev: EngineEvent): ServerFrame {
    switch (ev.type) {
      case 'start':
        return {
          type: 'start',
          id,
          model: this.ctx.runner.modelFor(ev.mode),
          prompt_tokens: ev.promptTokens,
          queue_ms: round(ev.queueMs),
          mode: ev.mode,
          seed: ev.seed,
          ...(ev.route ? { route: wireRoute(ev.route) } : {}),
        };
      case 'tokens':
        return {
          type: 'token',
          id,
          text: ev.text,
          tokens: ev.tokens.map((t) => ({
            id: t.id,
            text: t.text,
            source: t.source,
            t_ms: round(t.tMs),
            ...(t.logprobs
              ? {
                  logprob: t.logprobs.logprob,
                  ...(t.logprobs.top.length > 0
                    ? { top_logprobs: t.logprobs.top.map(({ id, text, logprob }) => ({ id, text, logprob })) }
                    : {}),
                }
              : {}),
          })),
        };
      case 'done':
        return { type: 'done', id, finish_reason: ev.finishReason, ...wireStats(ev), ...(ev.error ? { error: ev.error } : {}) };
    }
  }
}
