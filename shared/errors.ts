/**
 * One error type for the whole import, so that every failure carries what operators need:
 * a stable code, the step it happened in, and whether retrying can fix it.
 *
 * `transient`: retrying later can succeed (network, timeout, 5xx, 429, Tray's rate limit,
 * another delivery holding the user's lease). `permanent`: it will fail the same way until a
 * human fixes the plan, the secret or the user (validation errors, missing attributes, 401
 * after one refetch of the master token). Permanent failures go to the DLQ at once.
 *
 * Messages must never contain secret values: build them from field names and Tray's error
 * messages, never from request variables (graphql-request's ClientError message includes the
 * variables, so it is never used as a message).
 */
export type FailureKind = 'transient' | 'permanent';

export const ERROR_CODES = {
  INVALID_MESSAGE: 'permanent',
  PLAN_INVALID: 'permanent',
  MISSING_ATTRIBUTE: 'permanent',
  SECRET_UNREADABLE: 'permanent',
  SECRET_FIELD_MISSING: 'permanent',
  /** A credential value too short for redaction to protect: refused rather than imported. */
  SECRET_INVALID: 'permanent',
  TRAY_REJECTED: 'permanent',
  TRAY_UNAUTHORIZED: 'permanent',
  TRAY_BAD_RESPONSE: 'permanent',
  TRAY_RATE_LIMITED: 'transient',
  /** An enable refused within moments of the create: Tray's wait-before-enabling rule. */
  TRAY_NOT_READY: 'transient',
  TRAY_UNAVAILABLE: 'transient',
  TRAY_TIMEOUT: 'transient',
  TRAY_NETWORK: 'transient',
  AWS_UNAVAILABLE: 'transient',
  USER_BUSY: 'transient',
  /** The hour's ceiling of new Tray users (MAX_IMPORTS_PER_HOUR) is reached: the message waits. */
  IMPORT_CEILING: 'transient',
  OUT_OF_TIME: 'transient',
  INTERNAL: 'transient',
  /** Sending to the DLQ failed: the message stays on the queue (SQS's redrive is the backstop). */
  DEAD_LETTER_FAILED: 'transient',
} as const satisfies Record<string, FailureKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where in the import a failure happened; also the ledger's progress vocabulary. */
export type Step =
  | 'parse'
  | 'plan'
  | 'ledger'
  | 'secrets'
  | 'createExternalUser'
  | 'authorize'
  | 'createUserAuthentication'
  | 'createSolutionInstance'
  | 'enableSolutionInstance'
  | 'lookup'
  /** A step after the import: offboarding, credential rotation, upgrade. */
  | 'lifecycle'
  | 'deadLetter';

export class ImportError extends Error {
  readonly code: ErrorCode;
  readonly kind: FailureKind;
  readonly step: Step;
  /** HTTP status from Tray when there was one; used to decide on a master-token refetch. */
  readonly httpStatus: number | undefined;
  /** A create that failed this way may still have happened in Tray (timeout, 5xx, dropped connection). */
  readonly ambiguous: boolean;
  /** Tray said the object does not exist (a removal of something already gone counts as done). */
  readonly notFound: boolean;

  constructor(
    code: ErrorCode,
    step: Step,
    message: string,
    options: { httpStatus?: number | undefined; cause?: unknown; ambiguous?: boolean; notFound?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImportError';
    this.code = code;
    this.kind = ERROR_CODES[code];
    this.step = step;
    this.httpStatus = options.httpStatus;
    this.ambiguous = options.ambiguous ?? false;
    this.notFound = options.notFound ?? false;
  }

  toJSON(): { code: ErrorCode; kind: FailureKind; step: Step; message: string } {
    return { code: this.code, kind: this.kind, step: this.step, message: this.message };
  }
}

/** Anything unexpected becomes a transient INTERNAL error: retried, then dead-lettered with its reason. */
export function asImportError(e: unknown, step: Step): ImportError {
  if (e instanceof ImportError) return e;
  const name = e instanceof Error ? e.name : typeof e;
  const message = e instanceof Error ? e.message : String(e);
  return new ImportError('INTERNAL', step, `${name}: ${message}`, { cause: e });
}
