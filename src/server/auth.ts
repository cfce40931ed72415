import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time API key check (both sides hashed first, so lengths never leak through timing). */
export function keyMatches(expected: string, given: string | null | undefined): boolean {
  if (given == null) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
  const m = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  return m ? m[1]!.trim() : null;
}

/** Whether a request may pass: no key configured, or `given` is that key. */
export function keyAccepted(apiKey: string | undefined, given: string | null | undefined): boolean {
  return !apiKey || keyMatches(apiKey, given);
}
