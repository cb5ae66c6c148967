import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { COGNITO_SUB } from '../../shared/message.js';
import { type ImportPlan, requiredAttributes } from '../../shared/plan.js';
import { templateAttributes } from '../../shared/template.js';
import { formatIssues } from '../../shared/validation.js';
import { type DemoUser, demoUsers } from '../demo.js';

/**
 * The users `npm start` signs up: the demo users (with any attribute a custom plan needs filled
 * with a placeholder), users from `--users-file`, and the user broken on purpose.
 */

/** Where the plan reads an attribute: JSON paths of the plan, e.g. `auths[0].data.account_id`. */
export interface AttributeUse {
  attribute: string;
  usedAt: string[];
}

/**
 * The attributes the plan cannot do without (a user lacking one is dead-lettered with
 * MISSING_ATTRIBUTE), with where each is read. `requiredAttributes()` lists what the message
 * must carry, which always includes email and name even when no template reads them.
 */
export function referencedAttributes(plan: ImportPlan): AttributeUse[] {
  const uses = new Map<string, string[]>();
  const add = (attribute: string, path: string) => {
    if (attribute === 'sub' || attribute === 'username') return; // message fields of their own
    uses.set(attribute, [...(uses.get(attribute) ?? []), path]);
  };
  const addTemplate = (template: string, path: string) => templateAttributes(template).forEach((a) => add(a, path));
  addTemplate(plan.instanceName, 'instanceName');
  addTemplate(plan.externalUserId, 'externalUserId');
  addTemplate(plan.userName, 'userName');
  plan.auths.forEach((auth, i) => {
    addTemplate(auth.name, `auths[${i}].name`);
    for (const [field, source] of Object.entries(auth.data)) {
      if (source.attribute) add(source.attribute, `auths[${i}].data.${field}`);
      if (source.secret?.secretIdTemplate) addTemplate(source.secret.secretIdTemplate, `auths[${i}].data.${field}.secret.secretIdTemplate`);
    }
  });
  plan.configValues.forEach((config, i) => {
    if (config.attribute) add(config.attribute, `configValues[${i}] (${config.externalId})`);
  });
  return [...uses].map(([attribute, usedAt]) => ({ attribute, usedAt }));
}

/** The attribute the broken user goes without: a custom one if the plan reads any (the demo plan: custom:tenant_id). */
export function breakableAttribute(plan: ImportPlan): AttributeUse | undefined {
  const uses = referencedAttributes(plan);
  return uses.find((u) => u.attribute.startsWith('custom:')) ?? uses.find((u) => u.attribute !== 'email') ?? uses[0];
}

/** A stand-in value for an attribute, recognisably fake. */
export function placeholderValue(attribute: string, username: string, n: string): string {
  switch (attribute) {
    case 'email':
      return `${username}@example.com`;
    case 'name':
      return `Demo User ${n}`;
    case 'email_verified':
    case 'phone_number_verified':
      return 'true';
    case 'phone_number':
      return `+1555555${n.padStart(4, '0').slice(-4)}`;
    default:
      return `demo-${attribute.replace(/^custom:/, '').replace(/[^A-Za-z0-9_.-]/g, '-')}-${n}`;
  }
}

/** Fills every attribute the plan's messages carry that the user lacks (custom plans need more than the demo's). */
function withPlanAttributes(user: DemoUser, plan: ImportPlan, n: string): DemoUser {
  const attributes = { ...user.attributes };
  for (const name of requiredAttributes(plan)) attributes[name] ??= placeholderValue(name, user.username, n);
  return { ...user, attributes };
}

/**
 * `count` demo users. Against the stand-in their subs are fixed (`demoUsers`); against a real
 * Tray they are random, so that a second run does not meet the first run's Tray users under the
 * same externalUserId (the local ledger starts empty on every run).
 */
export function generateUsers(plan: ImportPlan, count: number, options: { randomSubs: boolean }): DemoUser[] {
  const runTag = randomUUID().slice(0, 6);
  return demoUsers(count).map((user, i) => {
    const n = String(i + 1).padStart(3, '0');
    if (!options.randomSubs) return withPlanAttributes(user, plan, n);
    const sub = randomUUID();
    const username = `tray-import-demo-${runTag}-${n}`;
    const base: DemoUser = {
      sub,
      username,
      attributes: { sub, email: `${username}@example.com`, email_verified: 'true', name: `Demo User ${n}` },
    };
    return withPlanAttributes(base, plan, n);
  });
}

/** A user whose sign-up carries everything but `attribute`: the worker must dead-letter it, having created nothing in Tray. */
export function brokenUser(plan: ImportPlan, attribute: string, options: { randomSubs: boolean }): DemoUser {
  const sub = options.randomSubs ? randomUUID() : '00000000-0000-4000-8000-00000000b0e1';
  const username = options.randomSubs ? `tray-import-broken-${sub.slice(0, 6)}` : 'broken-user';
  const user = withPlanAttributes(
    { sub, username, attributes: { sub, email: `${username}@example.com`, email_verified: 'true', name: 'Broken Demo User' } },
    plan,
    'broken',
  );
  delete user.attributes[attribute];
  return user;
}

const UsersFileSchema = z
  .array(
    z.strictObject({
      username: z.string({ error: 'the Cognito username' }).min(1),
      sub: z
        .string()
        .regex(COGNITO_SUB, {
          error: 'a Cognito sub is a UUID such as "3f1c2a9e-0b7d-4c55-9a53-2f0c8e6d1b7a"; leave it out to have one generated',
        })
        .optional(),
      attributes: z
        .record(z.string(), z.string(), { error: 'an object of Cognito attribute name to string value, e.g. {"email": "ada@example.com"}' })
        .default({}),
    }),
    { error: 'a JSON array of users: [{ "username": "ada", "attributes": { "email": "ada@example.com", "custom:tenant_id": "t-1" } }]' },
  )
  .min(1, { error: 'needs at least one user' });

/** `--users-file`: `[{ username, sub?, attributes }]`; a missing sub is generated. */
export function loadUsersFile(path: string): DemoUser[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the users file ${path}: ${(e as Error).message}`);
  }
  const parsed = UsersFileSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new Error(`the users file ${path} is invalid: ${formatIssues(parsed.error.issues)}`);
  const users = parsed.data.map((u) => {
    const sub = u.sub ?? u.attributes.sub ?? randomUUID();
    return { username: u.username, sub, attributes: { ...u.attributes, sub } };
  });
  const seen = new Set<string>();
  for (const u of users) {
    if (seen.has(u.sub)) throw new Error(`the users file ${path} is invalid: sub "${u.sub}" appears twice`);
    seen.add(u.sub);
  }
  return users;
}

/** Users lacking an attribute the plan reads: they would be dead-lettered. */
export function usersMissingAttributes(plan: ImportPlan, users: readonly DemoUser[]): { user: DemoUser; missing: string[] }[] {
  const needed = referencedAttributes(plan).map((u) => u.attribute);
  return users
    .map((user) => ({ user, missing: needed.filter((a) => user.attributes[a] === undefined) }))
    .filter((u) => u.missing.length > 0);
}

/** Values that appear more than once (usernames Cognito would refuse twice, Tray users made twice). */
export function duplicates(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const v of values) (seen.has(v) ? dup : seen).add(v);
  return [...dup];
}

/** What the plan's templates can read of a user: its attributes, sub and username. */
export function attributesOf(user: DemoUser): Record<string, string> {
  return { ...user.attributes, sub: user.sub, username: user.username };
}
