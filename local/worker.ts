import { loadWorkerConfig, type WorkerConfig } from '../functions/import-worker/settings.js';
import { createImportWorker, type WorkerDeps } from '../functions/import-worker/worker.js';
import type { SqsHandler } from './event-source-poller.js';

/**
 * The import worker as every local run builds and invokes it: the tests' harness, `npm start`
 * and the benchmark (through `npm start`'s pipeline). Each call is one Lambda container's cold
 * start, as functions/import-worker/handler.ts does it: settings read from `env` and validated,
 * then the handler built with its own clients, pacer share and master-token cache. A run that
 * needs a fresh token or a fresh share builds a fresh instance; nothing is reset behind a
 * library's back.
 */
export type WorkerOverrides = Partial<Omit<WorkerDeps, 'config'>>;

export interface WorkerInstance {
  /** The settings it read at its cold start. */
  config: WorkerConfig;
  handler: SqsHandler;
}

export function createWorkerInstance(env: NodeJS.ProcessEnv, overrides: WorkerOverrides = {}): WorkerInstance {
  const config = loadWorkerConfig(env);
  const handler = createImportWorker({ config, ...overrides });
  return { config, handler: (event, context) => handler(event, context) };
}
