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
