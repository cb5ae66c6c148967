/** Public API of the Tray Embedded stand-in (integration tests and `npm start`). */

export type { FaultKind, FaultRule } from './faults.js';
export { NOT_READY_CODE } from './resolvers.js';
export { TRAY_SCHEMA_PATH, traySchemaSdl } from './schema.js';
export type { CallRecord, TrayStandIn, TrayStandInOptions } from './server.js';
export { DEFAULT_TRAY_LATENCY_MS, RATE_LIMIT_BODY, startTrayStandIn, TRAY_ENABLE_DELAY_MS } from './server.js';
export type { NewSolutionVersion, SeedSolution, Snapshot, SolutionVersionRow } from './state.js';
export { newSolutionVersionSchema } from './versions.js';
