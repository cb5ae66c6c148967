/** Public API of the Tray Embedded stand-in (integration tests and `npm start`). */
export { startTrayStandIn, RATE_LIMIT_BODY, DEFAULT_TRAY_LATENCY_MS, TRAY_ENABLE_DELAY_MS } from './server.js';
export { NOT_READY_CODE } from './resolvers.js';
export type { TrayStandIn, TrayStandInOptions, CallRecord } from './server.js';
export type { FaultKind, FaultRule } from './faults.js';
export type { SeedSolution, Snapshot } from './state.js';
export { traySchemaSdl, TRAY_SCHEMA_PATH } from './schema.js';
