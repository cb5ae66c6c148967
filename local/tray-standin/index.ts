/** Public API of the Tray Embedded stand-in (integration tests and `npm start`). */
export { startTrayStandIn, RATE_LIMIT_BODY } from './server.js';
export type { TrayStandIn, TrayStandInOptions, CallRecord } from './server.js';
export type { FaultKind, FaultRule } from './faults.js';
export type { SeedSolution, Snapshot } from './state.js';
export { traySchemaSdl } from './schema.js';
