import { defineConfig } from 'vitest/config';

/**
 * The fast tier (`npm run test:unit`): files that start no server, emulator, child process or
 * CDK synth. Everything else is the integration tier. A new file is integration until listed
 * here; `npm test` runs both tiers.
 */
const unitTests = [
  'test/cli-output.test.ts',
  'test/cli-trigger.test.ts',
  'test/cognito-users.test.ts',
  'test/dlq-reference.test.ts',
  'test/lifecycle-message.test.ts',
  'test/message.test.ts',
  'test/pacer.test.ts',
  'test/plan-identity.test.ts',
  'test/plan.test.ts',
  'test/redact.test.ts',
  'test/secrets.test.ts',
  'test/security-attributes.test.ts',
  'test/security-dead-letter.test.ts',
  'test/security-reconcile-handler.test.ts',
  'test/tray-errors.test.ts',
  'test/tray-schema.test.ts',
];

export default defineConfig({
  test: {
    // Integration tests start real servers on 127.0.0.1; each file gets its own process.
    pool: 'forks',
    // Most of a file's time is spent waiting (Tray's latency, its 2 s enable rule, SQS visibility):
    // more files than cores run side by side without starving each other on 2 cores.
    maxWorkers: 4,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // it.concurrent cases (the fault matrix) each wait on Tray's latency and its 2 s enable rule.
    maxConcurrency: 40,
    // A green run prints only the summary: console output (Powertools logs and EMF metrics included,
    // see POWERTOOLS_DEV below) is shown for failing tests only.
    silent: 'passed-only',
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_METRICS_DISABLED: 'false',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // Powertools then writes through the global console (which vitest captures) instead of its own
      // Console on process.stdout, and pretty-prints its JSON.
      POWERTOOLS_DEV: 'true',
    },
    projects: [
      { extends: true, test: { name: 'unit', include: unitTests, pool: 'threads', isolate: false } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: unitTests } },
    ],
  },
});
