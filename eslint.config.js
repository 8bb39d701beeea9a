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
  {
    // Each AWS control-plane client has one home: Batch in lib/runners/batch.ts, SSM (platform
    // discovery) in lib/runners/platform.ts, CloudWatch Logs in lib/runners/batch-logs.ts.
    files: ['bin/**/*.ts', 'lib/**/*.ts', 'jobs/**/*.ts'],
    ignores: [
      'lib/infra/**',
      'lib/pipeline/**',
      'lib/config/**',
      'jobs/catalog.ts',
      'lib/runners/batch.ts',
      'lib/runners/platform.ts',
      'lib/runners/batch-logs.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: '@aws-sdk/client-batch', message: 'only lib/runners/batch.ts talks to AWS Batch' },
            {
              name: '@aws-sdk/client-ssm',
              message: 'only lib/runners/platform.ts reads SSM (platform discovery)',
            },
            {
              name: '@aws-sdk/client-cloudwatch-logs',
              message: 'only lib/runners/batch-logs.ts reads CloudWatch Logs',
            },
          ],
        },
      ],
    },
  },
);
