import { describe, expect, it } from 'vitest';
import { isImportable } from '../cli/cognito-users.js';

describe('which Cognito users backfill and reconcile import', () => {
  it.each([
    ['CONFIRMED', true],
    ['RESET_REQUIRED', true],
    ['EXTERNAL_PROVIDER', true],
    ['UNCONFIRMED', false],
    ['FORCE_CHANGE_PASSWORD', false],
    ['ARCHIVED', false],
    ['COMPROMISED', false],
    ['UNKNOWN', false],
  ] as const)('%s: %s', (status, imported) => {
    expect(isImportable({ UserStatus: status })).toBe(imported);
  });

  it('skips federated users when asked (--no-federated), and only them', () => {
    expect(isImportable({ UserStatus: 'EXTERNAL_PROVIDER' }, { federated: false })).toBe(false);
    expect(isImportable({ UserStatus: 'CONFIRMED' }, { federated: false })).toBe(true);
    expect(isImportable({ UserStatus: 'RESET_REQUIRED' }, { federated: false })).toBe(true);
  });
});
