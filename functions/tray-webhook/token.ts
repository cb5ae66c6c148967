import { createHash, timingSafeEqual } from 'node:crypto';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { registerSecret } from '../../shared/redact.js';

/**
 * The webhook's shared secret. Tray's settings take only a URL ("Expired auth notification
 * webhook" in the Embedded profile settings), with no custom header, so the token travels in the
 * URL's query (`?token=…`), inside TLS. It lives in Secrets Manager and is read as the master
 * token is (shared/master-token.ts): Powertools' SecretsProvider, cache owned by this instance,
 * re-read after `maxAgeMs` when asked (no timers), so a rotated token is picked up.
 */
/** Shorter would be guessable; the stack generates 48 characters. */
export const MIN_WEBHOOK_TOKEN_LENGTH = 24;

export class WebhookToken {
  private readonly provider: SecretsProvider;

  constructor(private readonly options: { secretId: string; maxAgeMs: number; client?: SecretsManagerClient | undefined }) {
    this.provider = new SecretsProvider(options.client ? { awsSdkV3Client: options.client } : {});
  }

  /** True when `given` is the token. Compared in constant time (digests of equal length), whatever `given` is. */
  async matches(given: string | undefined): Promise<boolean> {
    const expected = await this.read();
    if (given === undefined) return false;
    const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
    return timingSafeEqual(digest(given), digest(expected));
  }

  private async read(): Promise<string> {
    const { secretId, maxAgeMs } = this.options;
    const value: unknown = await this.provider.get(secretId, { maxAge: maxAgeMs / 1_000 });
    // Plain text (as the stack generates it) or {"token": "..."}.
    const token = typeof value === 'string' ? value : (value as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string' || token.trim().length < MIN_WEBHOOK_TOKEN_LENGTH) {
      throw new Error(
        `secret "${secretId}" does not hold a webhook token of at least ${MIN_WEBHOOK_TOKEN_LENGTH} characters (plain text or {"token": "..."})`,
      );
    }
    registerSecret(token.trim());
    return token.trim();
  }
}
