import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers on 127.0.0.1; each file gets its own process.
    pool: 'forks',
    // Most of a file's time is spent waiting (Tray's latency, its 2 s enable rule, SQS visibility):
    // more files than cores run side by side without starving each other on 2 cores.
    maxWorkers: 4,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // it.concurrent cases (the fault matrix) each wait on Tray's latency and its 2 s enable rule.
    maxConcurrency: 40,
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_METRICS_DISABLED: 'false',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    },
  },
});
