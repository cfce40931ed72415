// ESLint flat config: typescript-eslint's recommended rules, and the project's layering as errors.
// The layers (docs/architecture-style rules that used to live in comments):
//   src/engine/**   knows no HTTP: nothing from src/server, src/protocol or src/config
//   src/server/**   reaches the engine only through src/engine/index.ts (its public, light entry)
//   src/protocol/** the wire schemas: nothing from src/engine or src/server
//   src/**          never imports scripts/, load-tests/ or test/ (they may import src/)
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const ENGINE_PUBLIC = './src/engine/index.ts';

export const layers = [
  {
    target: './src/engine',
    from: ['./src/server', './src/protocol', './src/config'],
    message: 'the engine knows no HTTP, wire protocol or server config: take what it needs as EngineOptions / types',
  },
  {
    target: ['./src/server', './src/protocol', './src/config', './src/metrics', './src/main.ts'],
    from: './src/engine',
    except: ['./index.ts'],
    message: `outside the engine, import it only through ${ENGINE_PUBLIC}`,
  },
  {
    target: './src/protocol',
    from: ['./src/engine', './src/server'],
    message: 'the wire schemas stand alone: map them onto engine types in src/server',
  },
  {
    target: './src',
    from: ['./scripts', './load-tests', './test'],
    message: 'src/ never imports scripts/, load-tests/ or test/',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'results/**', '.tmp/**', 'scripts/models/work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { 'import-x': importX },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js', '.mjs'] } } },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layers }],
      // Unused names are errors, but a leading underscore marks a deliberate discard.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'none',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  // The playground is plain browser modules with no build step.
  { files: ['src/server/playground/**/*.js'], languageOptions: { globals: globals.browser } },
);
