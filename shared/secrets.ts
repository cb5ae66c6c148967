import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { classifyAwsFailure } from './aws-errors.js';
import { ImportError } from './errors.js';
import { MIN_SECRET_LENGTH, registerSecret, unredactablePath } from './redact.js';

/**
 * Reads credential fields from Secrets Manager for the plan's `secret` sources. Values are
 * cached for a short while (a rotated secret is picked up) and registered as secrets so that
 * no log line or error can carry them. Per-user secrets are cached too: a retry in a warm
 * container should not pay for them again.
 */
export interface SecretReaderOptions {
  client?: SecretsManagerClient;
  ttlMs?: number;
  /** Bounds memory when per-user secrets are used at volume. */
  maxEntries?: number;
}

export class SecretReader {
  private readonly client: SecretsManagerClient;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly cache = new Map<string, { expires: number; value: Promise<Record<string, unknown>> }>();

  constructor(options: SecretReaderOptions = {}) {
    this.client = options.client ?? new SecretsManagerClient({});
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.maxEntries = options.maxEntries ?? 1_000;
  }

  /**
   * `fresh`: read Secrets Manager now, whatever the cache holds (a credential rotation must send
   * the value that just changed, not one cached minutes ago); the cache then holds the new value.
   */
  async field(secretId: string, field: string, options: { fresh?: boolean } = {}): Promise<unknown> {
    const secret = await this.read(secretId, options.fresh === true);
    if (!Object.hasOwn(secret, field)) {
      throw new ImportError(
        'SECRET_FIELD_MISSING',
        'secrets',
        `secret "${secretId}" has no field "${field}" (it has: ${Object.keys(secret).join(', ') || 'none'}); add the field to the secret or fix the plan's "field"`,
      );
    }
    const value = secret[field];
    // A value too short to redact would be imported with nothing to keep it out of logs, the
    // ledger and the DLQ when an upstream error echoes it: refuse it instead.
    const short = unredactablePath(value);
    if (short !== undefined) {
      throw new ImportError(
        'SECRET_INVALID',
        'secrets',
        `secret "${secretId}" field "${short ? `${field}.${short}` : field}" is shorter than ${MIN_SECRET_LENGTH} characters, too short to keep out of logs and errors; store the real credential (at least ${MIN_SECRET_LENGTH} characters) or move a non-secret value to the plan as a "literal"`,
      );
    }
    // Registered again on each use: the registry forgets the oldest values first.
    registerSecret(value);
    return value;
  }

  private read(secretId: string, fresh: boolean): Promise<Record<string, unknown>> {
    const now = Date.now();
    const hit = this.cache.get(secretId);
    if (hit && hit.expires > now && !fresh) return hit.value;
    this.cache.delete(secretId);
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
    const value = this.fetch(secretId);
    this.cache.set(secretId, { expires: now + this.ttlMs, value });
    value.catch(() => this.cache.delete(secretId));
    return value;
  }

  private async fetch(secretId: string): Promise<Record<string, unknown>> {
    let text: string | undefined;
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId }));
      text = out.SecretString;
    } catch (e) {
      throw classifyAwsFailure(e, 'secrets', `reading secret "${secretId}"`, 'SECRET_UNREADABLE');
    }
    if (text === undefined) {
      throw new ImportError(
        'SECRET_UNREADABLE',
        'secrets',
        `secret "${secretId}" has no SecretString; store the credentials as a JSON object`,
      );
    }
    registerSecret(text);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ImportError(
        'SECRET_UNREADABLE',
        'secrets',
        `secret "${secretId}" is not a JSON object; store it as {"field": "value", ...}`,
      );
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ImportError(
        'SECRET_UNREADABLE',
        'secrets',
        `secret "${secretId}" is not a JSON object; store it as {"field": "value", ...}`,
      );
    }
    registerSecret(parsed);
    return parsed as Record<string, unknown>;
  }
}
