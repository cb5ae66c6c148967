import { describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { buildQueueMessage, parseAttributeList, parseQueueMessage } from '../shared/message.js';
import { renderImport } from '../shared/render.js';

const SUB = '6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c';
const attrs = { sub: SUB, email: 'ann@example.com', name: 'Ann', phone_number: '+100', 'custom:tenant_id': 't-1' };
const message = () =>
  buildQueueMessage({
    userPoolId: 'eu-west-1_Abc123',
    username: 'ann',
    userAttributes: attrs,
    attributeNames: ['custom:tenant_id', 'email', 'name'],
    source: 'signup',
    now: new Date('2026-01-02T03:04:05.000Z'),
  });

describe('queue message', () => {
  it('carries only the listed attributes, never the rest of the profile', () => {
    expect(message()).toEqual({
      v: 1,
      userPoolId: 'eu-west-1_Abc123',
      username: 'ann',
      sub: SUB,
      attributes: { 'custom:tenant_id': 't-1', email: 'ann@example.com', name: 'Ann' },
      source: 'signup',
      requestedAt: '2026-01-02T03:04:05.000Z',
    });
  });

  it('accepts Cognito subs in either case', () => {
    expect(parseQueueMessage(JSON.stringify({ ...message(), sub: SUB.toUpperCase() })).sub).toBe(SUB.toUpperCase());
    expect(parseQueueMessage(JSON.stringify({ ...message(), sub: '00000000-0000-4000-8000-000000000001' })).sub).toBe(
      '00000000-0000-4000-8000-000000000001',
    );
  });

  it('round-trips through JSON', () => {
    expect(parseQueueMessage(JSON.stringify(message()))).toEqual(message());
  });

  it('rejects bodies with a reason naming each field', () => {
    const bad = (body: unknown) => {
      try {
        parseQueueMessage(typeof body === 'string' ? body : JSON.stringify(body));
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('accepted');
    };
    expect(bad('not json').code).toBe('INVALID_MESSAGE');
    expect(bad({ ...message(), v: 7 }).message).toContain('$.v: unsupported message version: this worker reads version 1');
    expect(bad({ ...message(), userPoolId: 'nope' }).message).toContain('$.userPoolId: must be a Cognito user pool id');
    expect(bad({ ...message(), sub: '' }).message).toContain('$.sub: must not be empty');
    expect(bad({ ...message(), source: 'other' }).message).toContain('$.source');
    // The sub ends up in per-user secret ids and ledger keys: only Cognito's UUID format passes.
    for (const sub of ['../../tray-auth-import/master-token', 'a1b2', `${SUB}/x`, ` ${SUB}`, `${SUB}\n`, SUB.replace(/-/g, '')]) {
      const error = bad({ ...message(), sub });
      expect(error.code).toBe('INVALID_MESSAGE');
      expect(error.message).toContain('$.sub: must be the user\'s Cognito "sub", a UUID');
    }
    expect(bad({ ...message(), extra: 1 }).message).toContain('unknown field "extra"');
  });

  it('parses the MESSAGE_ATTRIBUTES setting', () => {
    expect(parseAttributeList(' email, custom:tenant_id ,,name')).toEqual(['email', 'custom:tenant_id', 'name']);
    expect(parseAttributeList(undefined)).toEqual(['email', 'name']);
  });
});

describe('rendering the plan for one user', () => {
  it('fills templates and sources, leaving secrets as references', () => {
    const rendered = renderImport(demoPlan(), message());
    expect(rendered.externalUserId).toBe(SUB);
    expect(rendered.instanceName).toBe('CRM sync for ann@example.com');
    expect(rendered.auths[0]!.name).toBe('Acme CRM (ann@example.com)');
    expect(rendered.auths[0]!.data).toEqual({
      api_key: { secretId: 'tray-auth-import/demo/acme-crm', field: 'apiKey' },
      account_id: { value: 't-1' },
      api_version: { value: '2024-01' },
    });
    expect(rendered.configValues).toEqual([
      { externalId: 'external_notification_email', value: 'ann@example.com' },
      { externalId: 'external_sync_interval_minutes', value: 15 },
    ]);
  });

  it('fails permanently, naming every missing attribute, before anything is created', () => {
    const m = message();
    delete m.attributes['custom:tenant_id'];
    delete m.attributes.email;
    expect(() => renderImport(demoPlan(), m)).toThrow(/lacks attributes "custom:tenant_id", "email" that the plan needs/);
  });
});
