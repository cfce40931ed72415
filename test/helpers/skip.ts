import { describe } from 'vitest';

/**
 * `describe(name, fn)`, or, when `reason` says why the suite cannot run here, the same suite skipped with the reason
 * in its name and on the console: a suite that does not run must say so, not vanish from the output.
 */
export function describeUnless(reason: string | null, name: string, fn: () => void): void {
  if (reason === null) {
    describe(name, fn);
    return;
  }
  console.warn(`skipped "${name}": ${reason}`);
  describe.skip(`${name} (skipped: ${reason})`, fn);
}
