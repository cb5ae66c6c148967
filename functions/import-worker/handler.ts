import { loadWorkerConfig } from '../../shared/config.js';
import { createImportWorker } from '../../shared/import-worker.js';

/** Lambda entry point: configuration is read and validated once, at cold start. */
export const handler = createImportWorker({ config: loadWorkerConfig(process.env) });
