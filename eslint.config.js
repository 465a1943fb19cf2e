// `npm run lint`: the rules that keep the layout what docs/architecture.md says it is.
import js from '@eslint/js'
import { importX } from 'eslint-plugin-import-x'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'test/package/', '.data/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: { 'import-x/extensions': ['.ts', '.js'] },
    rules: {
      // A promise nobody awaits or catches becomes an unhandled rejection, and the server exits on those.
      '@typescript-eslint/no-floating-promises': 'error',
      // No module imports itself back, type imports included: shared types live in a module of their own.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
      'import-x/no-duplicates': 'error',
      // `_` marks a value deliberately unused (a destructured field left out, say).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Plain scripts (the test runner, the build, the bench's helpers) run on Node.
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // tap's `t.test(...)` at a file's top level is its idiom: tap awaits every subtest itself.
    files: ['test/**/*.ts'],
    // JSON answers are read loosely there: each test asserts the fields it is about.
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The engine is a library with one door: nothing in the service reaches past its index.
    files: ['src/**/*.ts', 'machines/**/*.ts'],
    ignores: ['src/engine/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '(^|/)engine/(?!index\\.ts$)[^/]+$', message: 'Import the engine through src/engine/index.ts.' }],
      }],
    },
  },
  {
    // ...and it stands alone: it imports nothing of the service above it.
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./', message: 'The engine imports nothing from outside src/engine/.' }],
      }],
    },
  },
)
