import { type ErrorCode, ImportError, type Step } from './errors.js';

/**
 * AWS SDK failures: throttling, 5xx and network errors are transient; the rest (not found,
 * access denied, validation) need a human and are permanent with the given code.
 */
export function classifyAwsFailure(error: unknown, step: Step, what: string, permanentCode: ErrorCode): ImportError {
  if (error instanceof ImportError) return error;
  const e = error as { name?: string; message?: string; $fault?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const transient =
    e.$fault === 'server' ||
    e.$retryable !== undefined ||
    (status !== undefined && status >= 500) ||
    /Throttl|TooManyRequests|RequestLimitExceeded|ProvisionedThroughputExceeded|ServiceUnavailable|InternalServerError|TimeoutError|ECONN|socket hang up|fetch failed/i.test(
      `${e.name} ${e.message}`,
    );
  const detail = `${e.name ?? 'Error'}${e.message ? `: ${e.message}` : ''}`;
  return new ImportError(transient ? 'AWS_UNAVAILABLE' : permanentCode, step, `${what} failed: ${detail}`, { cause: error });
}
