import { describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { parsePlan } from '../shared/plan.js';

/**
 * A retry after a crash adopts the Tray user whose externalUserId is exactly the one this user
 * would create, so that id must belong to one user for good. A plan that renders it from
 * anything else is refused, naming the field and the fix.
 */
const withId = (externalUserId: string, extra: Record<string, unknown> = {}) => ({ ...demoPlan(), externalUserId, ...extra });
const problem = (input: unknown) => {
  try {
    parsePlan(input);
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
};

describe("the plan's externalUserId", () => {
  it('accepts {{sub}}, alone or after a fixed prefix', () => {
    expect(problem(withId('{{sub}}'))).toBeUndefined();
    expect(problem(withId('acme-{{sub}}'))).toBeUndefined();
  });

  it.each([
    ['an attribute users can change or share', '{{email}}'],
    ['a fixed text', 'acme'],
    ['sub mixed with another attribute', '{{custom:tenant_id}}-{{sub}}'],
  ])('refuses %s, naming the field and the fix', (_what, template) => {
    const message = problem(withId(template));
    expect(message).toMatch(/\$\.externalUserId/);
    expect(message).toMatch(/use "\{\{sub\}\}"/);
    expect(message).toMatch(/"trayUserPer": "company"/);
  });

  it('allows one Tray user per company only as an explicit choice, from a company attribute', () => {
    expect(problem(withId('{{custom:tenant_id}}', { trayUserPer: 'company' }))).toBeUndefined();
    expect(problem(withId('{{sub}}', { trayUserPer: 'company' }))).toMatch(/\$\.externalUserId: with "trayUserPer": "company"/);
    expect(problem(withId('everyone', { trayUserPer: 'company' }))).toMatch(/\$\.externalUserId/);
    expect(problem(withId('{{custom:tenant_id}}', { trayUserPer: 'tenant' }))).toMatch(/\$\.trayUserPer: must be "user"/);
  });
});
