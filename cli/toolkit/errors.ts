import type { CommanderError } from 'commander';
import { scrub } from '../../shared/redact.js';

/**
 * Exit codes and the errors that carry them, for the operators' CLI and `npm start` alike.
 * Documented in docs/operators.md, docs/local-run.md and the README: scripts can tell "you typed
 * it wrong" (2) from "AWS said no" (4), "the stack or queue is not there" (5) and "AWS could not
 * be reached" (6); 3 is `dlq list` finding messages; 1 is "it ran, and something failed".
 */
export const EXIT = { ok: 0, failures: 1, usage: 2, dlqNotEmpty: 3, credentials: 4, notFound: 5, network: 6 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the operator can fix; the message names the flag or file and the fix. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.usage,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A problem with the options or input files (exit 2), found before anything is started or changed. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'AccessDeniedException',
  'NotAuthorizedException',
  'TokenRefreshRequired',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
const NOT_FOUND_ERRORS = new Set([
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'ResourceNotFoundException',
  'UserPoolNotFoundException',
]);

/** Which exit code an error deserves: a CliError's own, else by the AWS SDK's (or Node's network) error name and code. */
export function exitCodeForError(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  const error = e as { name?: string; code?: string; message?: string; cause?: unknown; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? '';
  const code = error?.code ?? (error?.cause as { code?: string } | undefined)?.code ?? '';
  if (CREDENTIAL_ERRORS.has(name) || /could not load credentials|credential/i.test(name)) return EXIT.credentials;
  if (
    NETWORK_CODES.has(code) ||
    NETWORK_CODES.has(name) ||
    name === 'NetworkingError' ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|socket hang up/.test(error?.message ?? '')
  ) {
    return EXIT.network;
  }
  if (NOT_FOUND_ERRORS.has(name) || (name === 'ValidationError' && /does not exist/i.test(error?.message ?? ''))) return EXIT.notFound;
  return EXIT.failures;
}

/** Commander has already printed its message (unknown option, missing argument) or the help: only the exit code is left. */
export function exitCodeForCommanderError(e: CommanderError): ExitCode {
  return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
}

const HINTS: Partial<Record<ExitCode, string>> = {
  [EXIT.credentials]:
    'AWS credentials are missing, expired or not allowed: log in (e.g. `aws sso login --profile NAME`), pass --profile NAME, or set AWS_PROFILE',
  [EXIT.network]: 'AWS could not be reached: check the network, proxy settings and --region',
  [EXIT.notFound]: 'not found: check --stack-name / the resource flags and --region (and --profile for the right account)',
};

export function hintFor(code: ExitCode): string | undefined {
  return HINTS[code];
}

/** An AWS failure as a CliError whose exit code says what kind of failure it was; `message` already names the error, `fix` is the hint for other failures. */
export function classifyAwsError(e: unknown, message: string, fix?: string): CliError {
  if (e instanceof CliError) return e;
  const exitCode = exitCodeForError(e);
  const hint = HINTS[exitCode] ?? fix;
  return new CliError(hint ? `${message}; ${hint}` : message, exitCode);
}

/**
 * The one line an error is reported with (after `error: `), scrubbed of registered secrets: a
 * CliError's message as it is (it already says what to do), anything else with its name and the
 * hint its exit code has.
 */
export function errorMessage(e: unknown): string {
  if (e instanceof CliError) return scrub(e.message);
  if (!(e instanceof Error)) return scrub(String(e));
  const hint = hintFor(exitCodeForError(e));
  return scrub(`${e.name}: ${e.message}${hint ? `; ${hint}` : ''}`);
}
