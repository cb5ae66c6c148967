import { describe, expect, it } from 'vitest';
import { buildQueueMessage, parseAttributeList, parseQueueMessage } from '../shared/message.js';
import { renderImport } from '../shared/render.js';
import { demoPlan } from '../local/demo.js';

const attrs = { sub: 'a1b2', email: 'ann@example.com', name: 'Ann', phone_number: '+100', 'custom:tenant_id': 't-1' };
const message = () =>
  buildQueueMessage({ userPoolId: 'eu-west-1_Abc123', username: 'ann', userAttributes: attrs, attributeNames: ['custom:tenant_id', 'email', 'name'], source: 'signup', now: new Date('2026-01-02T03:04:05.000Z') });

describe('queue message', () => {
  it('carries only the listed attributes, never the rest of the profile', () => {
    expect(message()).toEqual({
      v: 1,
      userPoolId: 'eu-west-1_Abc123',
      username: 'ann',
      sub: 'a1b2',
      attributes: { 'custom:tenant_id': 't-1', email: 'ann@example.com', name: 'Ann' },
      source: 'signup',
      requestedAt: '2026-01-02T03:04:05.000Z',
    });
  });

  it('round-trips through JSON', () => {
    expect(parseQueueMessage(JSON.stringify(message()))).toEqual(message());
  });

  it('rejects bodies with a reason naming each field', () => {
    const bad = (body: unknown) => {
      try {
        parseQueueMessage(typeof body === 'string' ? body : JSON.stringify(body));
      } catch (e) {
        return (e as Error & { code: string });
      }
      throw new Error('accepted');
    };
    expect(bad('not json').code).toBe('INVALID_MESSAGE');
    expect(bad({ ...message(), v: 7 }).message).toContain('$.v: unsupported message version: this worker reads version 1');
    expect(bad({ ...message(), userPoolId: 'nope' }).message).toContain('$.userPoolId: must be a Cognito user pool id');
    expect(bad({ ...message(), sub: '' }).message).toContain('$.sub: must not be empty');
    expect(bad({ ...message(), source: 'other' }).message).toContain('$.source');
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
    expect(rendered.externalUserId).toBe('a1b2');
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
