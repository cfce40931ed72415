/**
 * HTTP load clients (besides autocannon): a timed OpenAI completions request, JSON or SSE, on Node's fetch.
 * SSE timings: TTFT is send → the first chunk with text; gaps are between text chunks (one per engine step, so
 * the in-step ~0 gaps of the WebSocket series do not exist here).
 */
import { newResult, type StreamResult } from './ws.ts';

export interface CompletionOptions {
  path?: '/v1/completions' | '/v1/chat/completions';
  /** Called on every SSE event (after the result was updated); may abort through `abort`. */
  onEvent?: (ev: { text: string; finish: string | null }, r: StreamResult, abort: () => void) => void;
  timeoutMs?: number;
  id?: string;
  /** Aborting it makes the client vanish (status 'aborted'). */
  signal?: AbortSignal;
}

function parseEvents(buf: string): { events: string[]; rest: string } {
  const events: string[] = [];
  let idx;
  while ((idx = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, idx);
    buf = buf.slice(idx + 2);
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data !== '') events.push(data);
  }
  return { events, rest: buf };
}

/** POST a completion (stream or not, per `body.stream`) and time it. Never throws for HTTP-level failures. */
export async function completion(
  url: string,
  body: Record<string, unknown>,
  opts: CompletionOptions = {},
): Promise<StreamResult & { sawDone: boolean }> {
  const stream = body['stream'] === true;
  const r = { ...newResult(opts.id ?? '', stream ? 'sse' : 'http', performance.now()), sawDone: false };
  const ac = new AbortController();
  let aborted = false;
  const abort = () => {
    aborted = true;
    ac.abort();
  };
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 120_000);
  if (opts.signal?.aborted) abort();
  else opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    r.sentAt = performance.now();
    const res = await fetch(`${url}${opts.path ?? '/v1/completions'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    const headersAt = performance.now();
    r.httpStatus = res.status;
    if (!res.ok) {
      r.rejectMs = headersAt - r.sentAt;
      r.retryAfter = res.headers.get('retry-after');
      const text = await res.text();
      try {
        const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
        r.errorCode = e?.code ?? '<none>';
        r.errorMessage = e?.message ?? null;
      } catch {
        r.errorCode = '<not json>';
      }
      r.status = 'error';
      r.e2eMs = performance.now() - r.sentAt;
      return r;
    }
    r.admitMs = headersAt - r.sentAt;
    if (!stream) {
      const json = (await res.json()) as {
        id?: string;
        choices?: { finish_reason?: string }[];
        usage?: { completion_tokens?: number };
        specd?: Record<string, unknown>;
      };
      const at = performance.now();
      r.ttftMs = at - r.sentAt;
      r.e2eMs = at - r.sentAt;
      r.finishReason = json.choices?.[0]?.finish_reason ?? null;
      if (json.id) r.serverId = json.id;
      r.tokens = json.usage?.completion_tokens ?? 0;
      if (json.specd) r.final = json.specd;
      r.status = 'done';
      return r;
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let last = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const at = performance.now();
      buf += decoder.decode(value, { stream: true });
      const parsed = parseEvents(buf);
      buf = parsed.rest;
      for (const data of parsed.events) {
        if (data === '[DONE]') {
          r.sawDone = true;
          continue;
        }
        const chunk = JSON.parse(data) as {
          id?: string;
          choices?: { text?: string; delta?: { content?: string }; finish_reason?: string | null }[];
          usage?: { completion_tokens?: number } | null;
          specd?: Record<string, unknown>;
        };
        if (chunk.id) r.serverId = chunk.id;
        const c = chunk.choices?.[0];
        const text = c?.text ?? c?.delta?.content ?? '';
        if (text !== '') {
          if (r.ttftMs === null) r.ttftMs = at - r.sentAt;
          else r.gapsMs.push(at - last);
          last = at;
        }
        const finish = c?.finish_reason ?? null;
        if (finish) {
          r.finishReason = finish;
          if (chunk.specd) r.final = chunk.specd;
        }
        if (chunk.usage?.completion_tokens !== undefined) r.tokens = chunk.usage.completion_tokens;
        opts.onEvent?.({ text, finish }, r, abort);
      }
      if (aborted) break;
    }
    r.e2eMs = performance.now() - r.sentAt;
    r.status = aborted ? 'aborted' : r.finishReason ? 'done' : 'closed';
    return r;
  } catch (e) {
    r.e2eMs = performance.now() - r.sentAt;
    r.status = aborted ? 'aborted' : ac.signal.aborted ? 'timeout' : 'closed';
    r.errorMessage = e instanceof Error ? e.message : String(e);
    return r;
  } finally {
    clearTimeout(timer);
  }
}
