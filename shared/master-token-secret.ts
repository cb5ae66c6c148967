import { ImportError } from './errors.js';
import { registerSecret } from './redact.js';

/**
 * The Tray master token from its secret's value: plain text, or JSON with a `token` (or
 * `masterToken`) field. Registered as a secret before anyone can log it. No middy here, so the
 * CLI can use it without pulling in the Lambda middleware.
 */
export function masterTokenFromSecret(value: unknown, secretId: string): string {
  const token =
    typeof value === 'string' ? value : value && typeof value === 'object' ? ((value as Record<string, unknown>).token ?? (value as Record<string, unknown>).masterToken) : undefined;
  if (typeof token !== 'string' || token.trim() === '') {
    throw new ImportError('SECRET_UNREADABLE', 'secrets', `secret "${secretId}" does not hold a Tray master token: store the token as plain text or as {"token": "..."}`);
  }
  registerSecret(token.trim());
  return token.trim();
}
