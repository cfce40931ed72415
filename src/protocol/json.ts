/**
 * JSON from clients, read without recursing over it. Every request specd accepts is a few levels deep (a chat
 * body is 3: body → messages → message), so nesting is capped far above that and checked by a linear scan
 * BEFORE JSON.parse: a 10 KB frame of 5,000 nested arrays would otherwise reach zod and the error-message code,
 * both recursive, and overflow the stack.
 */

/** Deepest nesting of arrays and objects accepted in a body or frame. */
export const MAX_JSON_DEPTH = 64;

export type JsonParse = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * The deepest array/object nesting in `text`, stopping as soon as it passes `limit` (so a hostile input costs
 * at most one pass up to the offending bracket). Brackets inside strings do not count; the text need not be
 * valid JSON (JSON.parse judges that afterwards).
 */
export function nestingDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** JSON.parse behind the depth cap; `what` names the input in messages ("request body", "frame"). */
export function parseClientJson(text: string, what: string, maxDepth = MAX_JSON_DEPTH): JsonParse {
  if (nestingDepth(text, maxDepth) > maxDepth) {
    return { ok: false, message: `The ${what} nests arrays/objects more than ${maxDepth} levels deep (this server's limit).` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, message: `The ${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * A short JSON-like rendering of a client's value for an error message: iterative, bounded in output length and
 * in the work done (it stops at `max` characters whatever the value's depth or width).
 */
export function previewValue(value: unknown, max = 80): string {
  let out = '';
  // A stack of pending pieces: literal text to emit, or values to render.
  const stack: ({ text: string } | { value: unknown })[] = [{ value }];
  while (stack.length > 0 && out.length <= max) {
    const item = stack.pop()!;
    if ('text' in item) {
      out += item.text;
      continue;
    }
    const v = item.value;
    if (Array.isArray(v)) {
      const shown = Math.min(v.length, max); // more elements than characters could never be shown
      const pieces: ({ text: string } | { value: unknown })[] = [{ text: '[' }];
      for (let i = 0; i < shown; i++) {
        if (i > 0) pieces.push({ text: ',' });
        pieces.push({ value: v[i] });
      }
      pieces.push({ text: shown < v.length ? ',…]' : ']' });
      for (let i = pieces.length - 1; i >= 0; i--) stack.push(pieces[i]!);
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      const shown = Math.min(keys.length, max);
      const pieces: ({ text: string } | { value: unknown })[] = [{ text: '{' }];
      for (let i = 0; i < shown; i++) {
        const key = keys[i]!;
        pieces.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(key.length > max ? key.slice(0, max) : key)}:` });
        pieces.push({ value: (v as Record<string, unknown>)[key] });
      }
      pieces.push({ text: shown < keys.length ? ',…}' : '}' });
      for (let i = pieces.length - 1; i >= 0; i--) stack.push(pieces[i]!);
    } else if (typeof v === 'string') {
      out += JSON.stringify(v.length > max ? v.slice(0, max) : v);
    } else if (v === undefined) {
      out += 'undefined';
    } else {
      out += typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : typeof v;
    }
  }
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
