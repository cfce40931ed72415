import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:unit`: the fast lane. Every suite of `npm test`, with SPECD_TEST_NO_MODELS=1 so that each suite
 * needing the model pair skips, saying why (test/helpers/models.ts). No list of files to keep in step: a suite is
 * out of this lane exactly when it is gated on the models, as it must be anyway for a checkout without them.
 */
export default mergeConfig(base, defineConfig({ test: { env: { SPECD_TEST_NO_MODELS: '1' } } }));
