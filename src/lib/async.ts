/** Small async helpers shared by the transports. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `promise` settles or after `ms`, whichever comes first (never rejects). */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<'settled' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** An AbortController that also aborts when any of the given signals does. */
export function linkedAbort(...signals: (AbortSignal | undefined)[]): AbortController {
  const ac = new AbortController();
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) ac.abort(s.reason);
    else s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac;
}

/** Resolves true once cond() holds (checked every `everyMs`), or false after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

type Settled<T, R> = { ok: IteratorResult<T, R> } | { err: unknown };

/**
 * Reads `source` ahead, from now on, into a buffer, and hands its results (and its error, in its place) out in order.
 * For the choices of one request: a choice that has started must keep running, and free its slot when done, while
 * the request still waits for a sibling's first event; a generator suspended at its first `yield` holds its
 * admission slot, and n such choices waiting on an n+1-th that needs one of those slots would wait forever.
 */
export function readAhead<T, R = void>(source: AsyncIterator<T, R>): AsyncIterableIterator<T, R | undefined> {
  const ready: Settled<T, R>[] = [];
  const waiters: ((s: Settled<T, R>) => void)[] = [];
  let finished = false;
  const deliver = (s: Settled<T, R>) => {
    const w = waiters.shift();
    if (w) w(s);
    else ready.push(s);
  };
  void (async () => {
    for (;;) {
      try {
        const r = await source.next();
        deliver({ ok: r });
        if (r.done) break;
      } catch (err) {
        deliver({ err });
        break;
      }
    }
  })();
  const settle = (s: Settled<T, R>): IteratorResult<T, R | undefined> => {
    if ('err' in s) {
      finished = true;
      throw s.err;
    }
    if (s.ok.done) finished = true;
    return s.ok;
  };
  const it: AsyncIterableIterator<T, R | undefined> = {
    async next() {
      const s = ready.shift();
      if (s) return settle(s);
      if (finished) return { done: true, value: undefined };
      return settle(await new Promise<Settled<T, R>>((r) => waiters.push(r)));
    },
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}
