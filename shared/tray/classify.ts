import { ClientError } from 'graphql-request';
import { ImportError, type Step } from '../errors.js';
import { scrubExcerpt, truncateCodePoints } from '../redact.js';

/**
 * Sorts a failed Tray call into transient (retry later) or permanent (dead-letter now).
 * Tray answers most errors with HTTP 200 and an `errors[]` array, and its rate-limit answer
 * is such a body, so the body is read before the status.
 */
interface GraphQLErrorLike {
  message?: string;
  extensions?: { name?: string; code?: string };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * True when Tray certainly did not execute the request, so a create can be sent again without
 * risking a duplicate: its rate limiter refused it, the connection was never made, or it was
 * never sent for lack of time. A 5xx, a timeout or a dropped connection may come after the
 * create happened (Tray has no idempotency keys); those are retried through the ledger's
 * look-up-then-create path instead.
 */
export function isSafeToResend(error: ImportError): boolean {
  return (
    error.code === 'TRAY_RATE_LIMITED' ||
    error.code === 'OUT_OF_TIME' ||
    (error.code === 'TRAY_NETWORK' && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT/.test(error.message))
  );
}

export function isRateLimitError(errors: readonly GraphQLErrorLike[] | undefined): boolean {
  return (errors ?? []).some((e) => /rate limit exceeded/i.test(e.message ?? ''));
}

export function classifyTrayFailure(error: unknown, step: Step, operation: string): ImportError {
  if (error instanceof ImportError) return error;
  if (error instanceof ClientError) return classifyResponse(error, step, operation);
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') {
      return new ImportError('TRAY_TIMEOUT', step, `Tray did not answer ${operation} in time`);
    }
    const code = (error.cause as { code?: string } | undefined)?.code ?? (error as { code?: string }).code;
    if (error.name === 'TypeError' || (code !== undefined && NETWORK_CODES.has(code))) {
      return new ImportError('TRAY_NETWORK', step, `could not reach Tray for ${operation}: ${code ?? scrubExcerpt(error.message, 300)}`);
    }
    // A 2xx answer that is not GraphQL JSON: a gateway or proxy page. Worth another try.
    if (/JSON|Unexpected token|Invalid execution result/i.test(error.message)) {
      return new ImportError('TRAY_UNAVAILABLE', step, `Tray answered ${operation} with a body that is not GraphQL JSON`);
    }
  }
  return new ImportError(
    'INTERNAL',
    step,
    `unexpected failure calling Tray ${operation}: ${scrubExcerpt(String((error as Error)?.message ?? error), 300)}`,
  );
}

function classifyResponse(error: ClientError, step: Step, operation: string): ImportError {
  // Never use error.message: graphql-request puts the request variables (credentials) in it.
  const status = error.response.status;
  const errors = (error.response.errors ?? []) as GraphQLErrorLike[];
  // Upstream text only after redaction, and only as much of it as explains the error.
  const detail = truncateCodePoints(errors.map((e) => scrubExcerpt(e.message ?? 'unknown error', 1_000)).join(' | '), 1_000);
  const options = { httpStatus: status };
  if (status === 429 || isRateLimitError(errors)) {
    return new ImportError('TRAY_RATE_LIMITED', step, `Tray rate limit exceeded on ${operation}`, options);
  }
  if (status >= 500) {
    return new ImportError(
      'TRAY_UNAVAILABLE',
      step,
      `Tray answered ${operation} with HTTP ${status}${detail ? `: ${detail}` : ''}`,
      options,
    );
  }
  const authCodes = errors.map((e) => e.extensions?.code);
  if (authCodes.includes('instance_not_ready')) {
    // Tray does not document what an enable too soon after the create gets; the stand-in answers
    // this code, and the workflow also treats any refused enable in the first seconds as not ready.
    return new ImportError('TRAY_NOT_READY', step, `Tray is not ready for ${operation} yet${detail ? `: ${detail}` : ''}`, options);
  }
  if (status === 401 || status === 403 || authCodes.includes('unauthenticated') || authCodes.includes('forbidden')) {
    return new ImportError(
      'TRAY_UNAUTHORIZED',
      step,
      `Tray refused the token for ${operation} (HTTP ${status})${detail ? `: ${detail}` : ''}`,
      {
        httpStatus: status === 200 ? 401 : status,
      },
    );
  }
  // Tray's own name for it is not documented; the stand-in answers NotFoundError / not_found.
  const notFound =
    status === 404 ||
    errors.some(
      (e) =>
        e.extensions?.code === 'not_found' ||
        e.extensions?.name === 'NotFoundError' ||
        /\b(not found|does not exist)\b/i.test(e.message ?? ''),
    );
  return new ImportError('TRAY_REJECTED', step, `Tray rejected ${operation}${detail ? `: ${detail}` : ` with HTTP ${status}`}`, {
    ...options,
    notFound,
  });
}
