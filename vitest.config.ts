import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Model-backed suites each load ONNX sessions; on a 2-core machine running them in parallel only thrashes.
    pool: 'forks',
    // --expose-gc: the memory tests compare heap after a forced collection, not garbage that happens to be there.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--expose-gc'] } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
