// Lint rules: the recommended sets plus the few checks that catch real bugs in
// async I/O code (floating promises, misused promises), and the layering
// rules (which folder may import which).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'web/dist/**', 'node_modules/**', 'coverage/**', 'test-results/**', '.kova/**', '.bench/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Layering: the engine knows nothing of HTTP, the database or the runtimes;
  // the API reaches the database only through the services; the runtimes are
  // below the services. (Folder names in the patterns are src/ top-level
  // folders; no inner folder of these layers has one of those names.)
  {
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(api|app|cli|db|jobs|runtime|scheduler|services)(/|$)',
              message: 'The engine must not import application layers (api, app, cli, db, jobs, runtime, scheduler, services).',
            },
            { regex: '^(fastify|@fastify/|better-sqlite3)', message: 'The engine must not depend on HTTP or database packages.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(\\.\\./)+db(/|$)', message: 'The API reaches the database through the services (types: src/services/models.ts).' },
            { regex: '^better-sqlite3', message: 'The API reaches the database through the services.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(\\.\\./)+(api|db|services)(/|$)', message: 'The runtimes must not import the services, the API or the database.' },
            { regex: '^(fastify|@fastify/|better-sqlite3)', message: 'The runtimes must not depend on HTTP or database packages.' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
