import { ImportError } from './errors.js';
import { MIN_SECRET_LENGTH, registerSecret } from './redact.js';

/**
 * The Tray master token from its secret's value: plain text, or JSON with a `token` (or
 * `masterToken`) field. Registered as a secret before anyone can log it. No middy here, so the
 * CLI can use it without pulling in the Lambda middleware.
 */
export function masterTokenFromSecret(value: unknown, secretId: string): string {
  const token =
    typeof value === 'string'
      ? value
      : value && typeof value === 'object'
        ? ((value as Record<string, unknown>).token ?? (value as Record<string, unknown>).masterToken)
        : undefined;
  if (typeof token !== 'string' || token.trim() === '') {
    throw new ImportError(
      'SECRET_UNREADABLE',
      'secrets',
      `secret "${secretId}" does not hold a Tray master token: store the token as plain text or as {"token": "..."}`,
    );
  }
  const trimmed = token.trim();
  // Tray's master tokens are long; a short value is a placeholder or a mistake, and one too short
  // to redact could not be kept out of logs when an upstream error echoes the request.
  if (trimmed.length < MIN_SECRET_LENGTH) {
    const field =
      typeof value === 'string'
        ? "the secret's text"
        : `field "${(value as Record<string, unknown>).token !== undefined ? 'token' : 'masterToken'}"`;
    throw new ImportError(
      'SECRET_INVALID',
      'secrets',
      `secret "${secretId}" (${field}) is shorter than ${MIN_SECRET_LENGTH} characters, so it cannot be the Tray master token and could not be redacted; put the master token from Tray's Embedded settings in it`,
    );
  }
  registerSecret(trimmed);
  return trimmed;
}
