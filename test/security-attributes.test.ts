import { describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { parseQueueMessage } from '../shared/message.js';
import { parsePlan } from '../shared/plan.js';
import { renderImport } from '../shared/render.js';
import { renderTemplate } from '../shared/template.js';

/** Issue #11, item 5: attribute names that are Object.prototype members must never render as function text. */
const PROTO_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];

describe('attribute lookups', () => {
  it.each(PROTO_NAMES)('renderTemplate reports {{%s}} as missing on a plain object', (name) => {
    expect(renderTemplate(`x {{${name}}}`, { email: 'a@example.com' })).toEqual({ ok: false, missing: [name] });
  });

  it('renderTemplate still renders own attributes with those names', () => {
    const attributes = JSON.parse('{"constructor":"c-value","__proto__":"p-value"}') as Record<string, string>;
    expect(renderTemplate('{{constructor}}/{{__proto__}}', attributes)).toEqual({ ok: true, value: 'c-value/p-value' });
  });

  it.each(PROTO_NAMES)('a plan reading attribute %s fails as MISSING_ATTRIBUTE instead of importing function text', (name) => {
    const raw = JSON.parse(JSON.stringify(demoPlan())) as Record<string, unknown> & { auths: { data: Record<string, unknown> }[] };
    raw.instanceName = `Sync {{${name}}}`;
    raw.auths[0]!.data.account_id = { attribute: name };
    const plan = parsePlan(raw);
    const message = parseQueueMessage(
      JSON.stringify({
        v: 1,
        userPoolId: 'us-east-1_DemoPool1',
        username: 'u1',
        sub: '00000000-0000-4000-8000-000000000001',
        attributes: { email: 'a@example.com', 'custom:tenant_id': 'tenant-001' },
        source: 'manual',
        requestedAt: new Date().toISOString(),
      }),
    );
    let error: unknown;
    try {
      const rendered = renderImport(plan, message);
      // Would have been "function Object() { [native code] }" and friends.
      expect(JSON.stringify(rendered)).not.toMatch(/native code|function/);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'MISSING_ATTRIBUTE' });
    expect((error as Error).message).toContain(`"${name}"`);
  });
});
