/**
 * Stop strings over streamed text. Emits everything that cannot be the start of a stop string, holds back the
 * longest suffix that could be (at most the longest stop string minus one character), and when a stop string
 * completes, possibly across several pushes, emits only the text before its earliest occurrence. The stop string
 * and anything after it are never emitted. Once stopped, it stays stopped. Without stop strings it passes text
 * through with no holdback.
 */
export class StopMatcher {
  private readonly stops: string[];
  private held = '';
  private done = false;

  constructor(stop: readonly string[]) {
    this.stops = [...new Set(stop.filter((s) => s.length > 0))];
  }

  get stopped(): boolean {
    return this.done;
  }

  push(text: string): { emit: string; stopped: boolean } {
    if (this.done) return { emit: '', stopped: true };
    if (this.stops.length === 0 || text.length === 0) return { emit: text, stopped: false };
    const buf = this.held + text;
    // `held` contains no stop string, so a match ends in `text`: start the search where such a match could start.
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s, Math.max(0, this.held.length - s.length + 1));
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      this.done = true;
      return { emit: buf.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = keep > 0 ? buf.slice(buf.length - keep) : '';
    return { emit: keep > 0 ? buf.slice(0, buf.length - keep) : buf, stopped: false };
  }

  /** The held-back text, at the end of a stream that did not stop. */
  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    const last = buf.charCodeAt(buf.length - 1);
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (s.charCodeAt(n - 1) === last && buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
