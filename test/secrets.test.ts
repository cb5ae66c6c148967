import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { masterTokenFromSecret } from '../shared/master-token-secret.js';
import { scrub } from '../shared/redact.js';
import { SecretReader } from '../shared/secrets.js';

/** Unit tests of one adapter: the SDK is mocked here; the pipeline tests use the real client. */
describe('SecretReader', () => {
  it('reads a field, caches the secret and registers its values as secrets', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'k-1234567890' }) });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    expect(await reader.field('acme', 'apiKey')).toBe('k-1234567890');
    expect(await reader.field('acme', 'apiKey')).toBe('k-1234567890');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(scrub('x k-1234567890')).toBe('x [redacted]');
  });

  it('names the missing field and the fields that exist, never their values', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ token: 'zzz-secret-zzz' }) });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    const error = await reader.field('acme', 'apiKey').catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'SECRET_FIELD_MISSING', kind: 'permanent' });
    expect((error as Error).message).toContain('has no field "apiKey" (it has: token)');
    expect((error as Error).message).not.toContain('zzz-secret-zzz');
  });

  it('a missing secret is permanent; throttling is transient and not cached', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand, { SecretId: 'gone' }).rejects(
      new ResourceNotFoundException({ message: 'not found', $metadata: { httpStatusCode: 400 } }),
    );
    sm.on(GetSecretValueCommand, { SecretId: 'busy' })
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }))
      .resolves({ SecretString: '{"a":"b-long-enough"}' });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1', maxAttempts: 1 }) });
    await expect(reader.field('gone', 'x')).rejects.toMatchObject({ code: 'SECRET_UNREADABLE', kind: 'permanent' });
    await expect(reader.field('busy', 'a')).rejects.toMatchObject({ code: 'AWS_UNAVAILABLE', kind: 'transient' });
    await expect(reader.field('busy', 'a')).resolves.toBe('b-long-enough');
  });

  it('refuses a credential field too short to redact, naming the secret and field, not the value', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ apiKey: 'k9Z!x', region: 'eu', nested: { token: 'long-enough-token', pin: 4821 } }),
    });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    const short = await reader.field('acme/api', 'apiKey').catch((e: Error) => e);
    expect(short).toMatchObject({ code: 'SECRET_INVALID', kind: 'permanent', step: 'secrets' });
    expect((short as Error).message).toMatch(/secret "acme\/api" field "apiKey" is shorter than 8 characters/);
    expect((short as Error).message).not.toContain('k9Z!x');
    const nested = await reader.field('acme/api', 'nested').catch((e: Error) => e);
    expect((nested as Error).message).toContain('field "nested.pin"');
    expect((nested as Error).message).not.toContain('4821');
  });

  it('does not read inherited properties as fields', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: 'k-1234567890' }) });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    await expect(reader.field('acme', 'constructor')).rejects.toMatchObject({ code: 'SECRET_FIELD_MISSING' });
    await expect(reader.field('acme', '__proto__')).rejects.toMatchObject({ code: 'SECRET_FIELD_MISSING' });
  });

  it('refuses a master token too short to redact, naming the secret and field', () => {
    for (const value of ['abc', { token: 'abc' }, { masterToken: ' abcdefg ' }]) {
      const error = (() => {
        try {
          masterTokenFromSecret(value, 'tray-auth-import/master-token');
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(error).toMatchObject({ code: 'SECRET_INVALID', kind: 'permanent' });
      expect(error?.message).toContain('secret "tray-auth-import/master-token"');
      expect(error?.message).not.toMatch(/abc/);
    }
    expect(masterTokenFromSecret({ token: ' long-master-token ' }, 'm')).toBe('long-master-token');
    expect(scrub('Bearer long-master-token')).toBe('Bearer [redacted]');
  });
});
