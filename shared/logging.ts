import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { jsonScrubber } from './redact.js';

/**
 * Structured JSON logs (Powertools Logger) with every string scrubbed of registered secret
 * values and secret-named keys redacted, and EMF metrics (Powertools Metrics).
 */
export const SERVICE_NAME = 'tray-auth-import';
export const METRICS_NAMESPACE = 'TrayAuthImport';

export function createLogger(component: string): Logger {
  return new Logger({
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
    persistentKeys: { component },
    jsonReplacerFn: jsonScrubber,
  });
}

export function createMetrics(component: string): Metrics {
  return new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
    defaultDimensions: { component },
  });
}

export { MetricUnit };
export type { Logger, Metrics };
