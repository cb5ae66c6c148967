import { ClientError } from 'graphql-request';
import { describe, expect, it } from 'vitest';
import { ImportError } from '../shared/errors.js';
import { registerSecret } from '../shared/redact.js';
import { retryDelaySeconds } from '../shared/redelivery.js';
import { backoffMs } from '../shared/retry.js';
import { classifyTrayFailure, isSafeToResend } from '../shared/tray/classify.js';

const clientError = (status: number, errors?: { message: string; extensions?: { name?: string; code?: string } }[]) =>
  new ClientError({ status, headers: new Headers(), body: '', errors } as never, {
    query: 'mutation { x }',
    variables: { data: '{"api_key":"super-secret-value-1"}' },
  });

const classify = (e: unknown) => classifyTrayFailure(e, 'createUserAuthentication', 'createUserAuthentication');

describe('Tray error classification', () => {
  it.each([
    ['HTTP 500', clientError(500), 'TRAY_UNAVAILABLE', 'transient'],
    ['HTTP 502 after commit', clientError(502), 'TRAY_UNAVAILABLE', 'transient'],
    ['HTTP 429', clientError(429), 'TRAY_RATE_LIMITED', 'transient'],
    [
      'rate limit body with HTTP 200',
      clientError(200, [{ message: 'Rate limit exceeded', extensions: { name: 'PreconditionError', code: 'access_not_allowed' } }]),
      'TRAY_RATE_LIMITED',
      'transient',
    ],
    ['HTTP 401', clientError(401, [{ message: 'Unauthorized' }]), 'TRAY_UNAUTHORIZED', 'permanent'],
    ['HTTP 403', clientError(403), 'TRAY_UNAUTHORIZED', 'permanent'],
    [
      'validation error (wrong-case slot)',
      clientError(200, [
        {
          message: 'Auth slot "External_X" does not exist in solution "sol-1"',
          extensions: { name: 'ValidationError', code: 'invalid_input' },
        },
      ]),
      'TRAY_REJECTED',
      'permanent',
    ],
  ])('%s → %s (%s)', (_name, error, code, kind) => {
    const result = classify(error);
    expect(result.code).toBe(code);
    expect(result.kind).toBe(kind);
    expect(result.step).toBe('createUserAuthentication');
  });

  it('timeouts and network failures are transient', () => {
    expect(classify(new DOMException('The operation was aborted due to timeout', 'TimeoutError')).code).toBe('TRAY_TIMEOUT');
    expect(classify(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })).code).toBe('TRAY_NETWORK');
    expect(classify(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } })).kind).toBe('transient');
  });

  it('never copies the request variables (credentials) into the message', () => {
    const result = classify(clientError(200, [{ message: 'bad service' }]));
    expect(result.message).toBe('Tray rejected createUserAuthentication: bad service');
    expect(result.message).not.toContain('super-secret-value-1');
  });

  it('scrubs registered secrets that Tray echoes back', () => {
    registerSecret('echoed-secret-value-42');
    expect(classify(clientError(200, [{ message: 'invalid key echoed-secret-value-42' }])).message).toBe(
      'Tray rejected createUserAuthentication: invalid key [redacted]',
    );
  });

  it('re-sends a create only when Tray certainly did not run it', () => {
    expect(isSafeToResend(classify(clientError(200, [{ message: 'Rate limit exceeded' }])))).toBe(true);
    expect(isSafeToResend(classify(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })))).toBe(true);
    expect(isSafeToResend(classify(clientError(502)))).toBe(false);
    expect(isSafeToResend(classify(new DOMException('timeout', 'TimeoutError')))).toBe(false);
    expect(isSafeToResend(new ImportError('TRAY_REJECTED', 'createExternalUser', 'x'))).toBe(false);
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter, capped', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1_000, jitter: 'full' } as const;
    expect(backoffMs(1, policy, () => 0.999)).toBe(100);
    expect(backoffMs(3, policy, () => 0.999)).toBe(400);
    expect(backoffMs(10, policy, () => 0.999)).toBe(999);
    expect(backoffMs(3, policy, () => 0)).toBe(0);
  });

  it('pushes redeliveries back more with each receive, within SQS limits', () => {
    const max = (n: number) => retryDelaySeconds(n, 30, 900, () => 1);
    const min = (n: number) => retryDelaySeconds(n, 30, 900, () => 0);
    expect([max(1), max(2), max(3), max(10)]).toEqual([30, 60, 120, 900]);
    expect([min(1), min(2)]).toEqual([15, 30]);
  });
});
