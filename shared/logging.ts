import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
/**
 * Structured JSON logs (Powertools Logger) with every string scrubbed of registered secret
 * values and secret-named keys redacted, and EMF metrics (Powertools Metrics).
 */
import { METRICS_NAMESPACE, SERVICE_NAME } from './names.js';
import { jsonScrubber } from './redact.js';

export { METRICS_NAMESPACE, SERVICE_NAME };

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

export type { Logger, Metrics };
export { MetricUnit };
