import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../../src/engine/text/stop.ts';
import { rng } from './util.ts';

/** Pushes `parts` until a stop; returns the emitted text (plus the flush when nothing stopped). */
function feed(m: StopMatcher, parts: string[]): { text: string; stopped: boolean; pushes: number } {
  let text = '';
  for (const [i, p] of parts.entries()) {
    const r = m.push(p);
    text += r.emit;
    if (r.stopped) return { text, stopped: true, pushes: i + 1 };
  }
  return { text: text + m.flush(), stopped: false, pushes: parts.length };
}

describe('StopMatcher', () => {
  it('is a pass-through with zero holdback without stop strings (empty ones are ignored)', () => {
    for (const stops of [[], [''], ['', '']]) {
      const m = new StopMatcher(stops);
      expect(m.push('abc')).toEqual({ emit: 'abc', stopped: false });
      expect(m.push('')).toEqual({ emit: '', stopped: false });
      expect(m.flush()).toBe('');
    }
  });

  it('matches a stop string spanning pushes, emits the text before it exactly and never the stop string', () => {
    const m = new StopMatcher(['THE END']);
    const rs = ['and they lived happily. TH', 'E E', 'ND and more'].map((p) => m.push(p));
    expect(rs).toEqual([
      { emit: 'and they lived happily. ', stopped: false },
      { emit: '', stopped: false },
      { emit: '', stopped: true },
    ]);
  });

  it('holds back only the longest suffix that may start a stop string, and releases it when it does not', () => {
    const m = new StopMatcher(['\n\n', 'abc']);
    expect(m.push('x\n')).toEqual({ emit: 'x', stopped: false });
    expect(m.push('y')).toEqual({ emit: '\ny', stopped: false });
    expect(m.push('zab')).toEqual({ emit: 'z', stopped: false });
    expect(m.push('x')).toEqual({ emit: 'abx', stopped: false });
    expect(m.push('a')).toEqual({ emit: '', stopped: false });
    expect(m.flush()).toBe('a');
  });

  it('never holds back more than the longest stop string minus one character', () => {
    const m = new StopMatcher(['aaaab', 'ac']);
    let out = '';
    for (let i = 1; i <= 20; i++) {
      out += m.push('a').emit;
      expect(i - out.length).toBe(Math.min(i, 4));
    }
    expect(out + m.flush()).toBe('a'.repeat(20));
  });

  it('stops at the very start', () => {
    expect(new StopMatcher(['Once']).push('Once upon')).toEqual({ emit: '', stopped: true });
    const m = new StopMatcher(['Once']);
    expect(m.push('On')).toEqual({ emit: '', stopped: false });
    expect(m.push('ce')).toEqual({ emit: '', stopped: true });
  });

  it('with one stop string a prefix of another, stops at the shorter as soon as it completes', () => {
    for (const stops of [
      ['cat', 'cats'],
      ['cats', 'cat'],
    ]) {
      const m = new StopMatcher(stops);
      expect(m.push('the ca')).toEqual({ emit: 'the ', stopped: false });
      expect(m.push('ts')).toEqual({ emit: '', stopped: true });
    }
    const m = new StopMatcher(['\n\nUser:', '\n\n']);
    expect(feed(m, ['Hi.\n', '\nUser: x'])).toEqual({ text: 'Hi.', stopped: true, pushes: 2 });
  });

  it('cuts at the earliest occurrence when several stop strings complete in one push', () => {
    expect(new StopMatcher(['bc', 'abcd']).push('xabcdy')).toEqual({ emit: 'x', stopped: true });
    expect(new StopMatcher(['d', 'bcd']).push('abcde')).toEqual({ emit: 'a', stopped: true });
  });

  it('stays stopped', () => {
    const m = new StopMatcher(['.']);
    expect(m.push('a.b')).toEqual({ emit: 'a', stopped: true });
    expect(m.push('more')).toEqual({ emit: '', stopped: true });
    expect(m.flush()).toBe('');
  });

  it('handles non-BMP characters in text and stop strings', () => {
    const m = new StopMatcher(['🙂👍']);
    expect(feed(m, ['a🙂', 'b🙂', '👍🏽 c'])).toEqual({ text: 'a🙂b', stopped: true, pushes: 3 });
  });

  it('agrees with a reference on random text and random pushes', () => {
    const rand = rng(11);
    const word = (n: number) => Array.from({ length: n }, () => 'ab\nc'[rand(4)]).join('');
    for (let trial = 0; trial < 2000; trial++) {
      const stops = Array.from({ length: rand(4) }, () => word(rand(5)));
      const text = word(rand(40));
      const parts: string[] = [];
      for (let i = 0; i < text.length;) {
        const n = 1 + rand(6);
        parts.push(text.slice(i, i + n));
        i += n;
      }
      // Reference: after each push, does the text so far contain a stop string? Then cut at its earliest one.
      let expected = { text, stopped: false, pushes: parts.length };
      let sofar = '';
      for (const [i, p] of parts.entries()) {
        sofar += p;
        const hits = stops.filter((s) => s && sofar.includes(s)).map((s) => sofar.indexOf(s));
        if (hits.length) {
          expected = { text: sofar.slice(0, Math.min(...hits)), stopped: true, pushes: i + 1 };
          break;
        }
      }
      expect(feed(new StopMatcher(stops), parts)).toEqual(expected);
    }
  });
});
