import { loadWorkerConfig } from './settings.js';
import { createImportWorker } from './worker.js';

/** Lambda entry point: settings are read and validated once, at cold start. */
export const handler = createImportWorker({ config: loadWorkerConfig(process.env) });
