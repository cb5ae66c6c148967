import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  // Type-aware: floating and misused promises, awaits of non-promises, unsafe `any` flows.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Namespace zod imports only (issue 12): with `import { z } from 'zod'` esbuild bundles every
      // zod locale (about 260 KiB). no-restricted-imports cannot say this: its `importNames`
      // also refuses `import * as z`.
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value=/^zod(\\u002F.*)?$/] > ImportSpecifier[imported.name='z']",
          message:
            "Write `import * as z from 'zod'` (or 'zod/mini'): the named `z` import makes esbuild bundle all of zod's locales, about 260 KiB.",
        },
      ],
      // A switch over a union names every member (or says `default`), so a new member is a compile-time decision.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // Product code never imports the reference material beside the repository.
      'no-restricted-imports': ['error', { patterns: ['../shared/reference/*', '../../shared/reference/*', '*/shared/reference/*'] }],
    },
  },
  {
    // Tests read untyped JSON on purpose (synthesized CloudFormation templates, raw GraphQL and SQS
    // bodies) and assert on its shape: the `any` family would only add casts that assert nothing.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Test doubles implement async interfaces (sleep, send, run) with bodies that need no await.
      '@typescript-eslint/require-await': 'off',
    },
  },
);
