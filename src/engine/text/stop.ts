/**
 * Stop strings over streamed text: emits everything that cannot be the start of a stop string, holds back the
 * longest suffix that could be (at most the longest stop string minus one character), and on a match emits only
 * the text before it. The stop string itself is never emitted, even when it spans several tokens.
 */
export class StopMatcher {
  private readonly stops: string[];
  private held = '';

  constructor(stop: readonly string[]) {
    this.stops = stop.filter((s) => s.length > 0);
  }

  push(text: string): { emit: string; stopped: boolean } {
    if (this.stops.length === 0) return { emit: text, stopped: false };
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      return { emit: buf.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { emit: buf.slice(0, buf.length - keep), stopped: false };
  }

  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) { best = n; break; }
      }
    }
    return best;
  }
}
