import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'cdk.out/', 'runs/', 'examples/data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The control plane must start fast and synthesise without image libraries:
    // lib/infra and lib/pipeline never import heavy data-plane modules.
    files: ['lib/infra/**/*.ts', 'lib/pipeline/**/*.ts', 'lib/config/**/*.ts', 'jobs/catalog.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['sharp', 'geotiff', '@aws-sdk/*'],
              message: 'control-plane code must not load data-plane or AWS runtime clients',
            },
          ],
        },
      ],
    },
  },
);
