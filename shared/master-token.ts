import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { classifyAwsFailure } from './aws-errors.js';
import { masterTokenFromSecret } from './master-token-secret.js';
import type { MasterTokenSource } from './tray/client.js';

/**
 * The Tray master token of one worker instance, read from Secrets Manager through Powertools'
 * SecretsProvider, whose cache belongs to this instance (no module-wide cache to clear, no
 * timers: a value is re-read when it is asked for after `maxAgeMs`, so a rotated token is picked
 * up). Each invocation gets its own source (`forInvocation`): it reads at most once however many
 * records ask at once, and `refresh()` forces one re-read after Tray answers 401 — the token may
 * have been rotated — shared by every record that saw the 401. With `maxAgeMs` 0 nothing is
 * kept between invocations, and each reads the secret once.
 */
export interface MasterTokenCacheOptions {
  secretId: string;
  maxAgeMs: number;
  client?: SecretsManagerClient | undefined;
}

export class MasterTokenCache {
  private readonly provider: SecretsProvider;

  constructor(private readonly options: MasterTokenCacheOptions) {
    this.provider = new SecretsProvider(options.client ? { awsSdkV3Client: options.client } : {});
  }

  forInvocation(): MasterTokenSource {
    let current: Promise<string> | undefined;
    let refreshing: Promise<string> | undefined;
    return {
      get: () => (current ??= this.read(false)),
      refresh: () =>
        (refreshing ??= (current = this.read(true)).finally(() => {
          // Records that saw the 401 together share this read; a later 401 reads again.
          setTimeout(() => (refreshing = undefined), 0);
        })),
    };
  }

  private async read(forceFetch: boolean): Promise<string> {
    const { secretId, maxAgeMs } = this.options;
    let value: unknown;
    try {
      value = await this.provider.get(secretId, { maxAge: maxAgeMs / 1_000, forceFetch });
    } catch (e) {
      // Powertools wraps the SDK's error. Throttling and 5xx are worth a retry; a missing secret
      // or denied access needs a human.
      const cause = (e as { cause?: unknown }).cause ?? e;
      throw classifyAwsFailure(cause, 'secrets', `reading the master token secret "${secretId}"`, 'SECRET_UNREADABLE');
    }
    return masterTokenFromSecret(value, secretId);
  }
}
