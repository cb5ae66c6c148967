import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ImportError } from './errors.js';
import { PER_USER_TEMPLATE_RULE, perUserSecretPrefix, trayUrlProblem } from './security-policy.js';
import { templateAttributes, templateSyntaxProblem } from './template.js';
import { formatIssues } from './validation.js';

/**
 * The import plan: what to import into Tray for every user, as one JSON file. It is validated
 * when loaded (worker cold start, `cdk synth`, every CLI command), and every error names the
 * JSON path and what to write instead. Types are inferred from the schema: there is no
 * separate interface to keep in step.
 */

/** Cognito attribute names: standard ones (`email`, `name`, `sub`), `custom:...`, and `username`. */
const AttributeName = z.string({ error: 'a Cognito attribute name such as "email" or "custom:tenant"' }).regex(/^[A-Za-z0-9_:.-]{1,128}$/, {
  error: 'must be a Cognito attribute name such as "email" or "custom:tenant" (letters, digits, "_", ":", ".", "-")',
});

const Template = (example: string) =>
  z
    .string({ error: `a text template such as ${JSON.stringify(example)}` })
    .min(1, { error: `must not be empty; for example ${JSON.stringify(example)}` })
    .superRefine((value, ctx) => {
      const problem = templateSyntaxProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

const SecretRef = z
  .strictObject({
    secretId: z.string().min(1, { error: 'must be a secret name or ARN' }).optional(),
    secretIdTemplate: Template('tray-import/users/{{sub}}')
      .refine((t) => templateAttributes(t).every((a) => a === 'sub') && templateAttributes(t).length > 0 && !t.startsWith('{{'), {
        // Users write their own attributes at sign-up: a template on any other attribute would let
        // a user choose whose secret is imported for them. `sub` is assigned by Cognito.
        error:
          'may only use {{sub}} (Cognito assigns it; users can set other attributes themselves) after a fixed prefix, e.g. "tray-import/users/{{sub}}"',
        abort: true,
      })
      // IAM grants `<prefix>*`: the prefix must be a namespace of its own (see security-policy.ts).
      .refine((t) => perUserSecretPrefix(t) !== undefined, { error: PER_USER_TEMPLATE_RULE })
      .optional(),
    field: z.string({ error: 'the JSON field of the secret to read, e.g. "apiKey"' }).min(1),
  })
  .superRefine((ref, ctx) => {
    if ((ref.secretId === undefined) === (ref.secretIdTemplate === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'set exactly one of "secretId" (one secret shared by all users) or "secretIdTemplate" (one secret per user, e.g. "tray-import/users/{{sub}}")',
      });
    }
  });

/** Where one credential field comes from. Credentials belong in Secrets Manager: attributes travel in queue messages. */
const DataSource = z
  .strictObject({
    literal: z.union([z.string(), z.number(), z.boolean()]).optional(),
    attribute: AttributeName.optional(),
    secret: SecretRef.optional(),
  })
  .superRefine((source, ctx) => {
    const set = (['literal', 'attribute', 'secret'] as const).filter((k) => source[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `set exactly one of "literal", "attribute" or "secret" (found ${set.length === 0 ? 'none' : set.join(' and ')}); e.g. { "secret": { "secretId": "acme/api", "field": "apiKey" } }`,
      });
    }
  });

const ConfigValue = z
  .strictObject({
    externalId: z
      .string({ error: 'the config slot id, starting with "external_"' })
      .startsWith('external_', { error: 'config slot ids start with "external_" (case-sensitive): copy it from the solution editor' }),
    value: z.json().optional(),
    attribute: AttributeName.optional(),
  })
  .superRefine((config, ctx) => {
    if ((config.value === undefined) === (config.attribute === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one of "value" (any JSON value, sent as is) or "attribute" (a Cognito attribute of the user)',
      });
    }
  });

const AuthImport = z.strictObject({
  externalId: z.string({ error: "the hidden auth slot's externalId, exactly as in the solution editor (case-sensitive)" }).min(1),
  name: Template('Acme for {{email}}').describe('auth name shown in Tray; also how a retry finds an auth created before a crash'),
  serviceId: z.string({ error: 'the serviceId from Tray\'s "Authentication import generator"' }).min(1),
  serviceEnvironmentId: z.string({ error: 'the serviceEnvironmentId from Tray\'s "Authentication import generator"' }).min(1),
  scopes: z.array(z.string().min(1), { error: 'a list of OAuth scope strings, e.g. ["read", "write"]' }).optional(),
  formData: z.record(z.string(), z.json()).optional(),
  hidden: z.boolean().optional(),
  data: z.record(z.string().min(1), DataSource).refine((data) => Object.keys(data).length > 0, {
    error: 'needs at least one credential field, e.g. { "api_key": { "secret": { "secretId": "acme/api", "field": "apiKey" } } }',
  }),
});

const TrayTarget = z
  .strictObject({
    region: z.enum(['us', 'eu', 'apac'], { error: 'must be "us", "eu" or "apac"' }).optional(),
    graphqlUrl: z
      .url({ protocol: /^https?$/, error: 'must be an https URL such as "https://tray.io/graphql"' })
      .superRefine((url, ctx) => {
        const problem = trayUrlProblem(url, 'tray.graphqlUrl');
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
  })
  .superRefine((tray, ctx) => {
    if (tray.region !== undefined && tray.graphqlUrl !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'set "region" or "graphqlUrl", not both' });
    }
  });

/** What offboarding does in Tray: `remove` the instance, then the auths, then the Tray user; `disable` the instance; `keep` everything. */
export const OffboardPolicySchema = z.enum(['remove', 'disable', 'keep'], {
  error: 'must be "remove" (delete the instance, auths and Tray user), "disable" (disable the instance) or "keep" (change nothing in Tray)',
});
export type OffboardPolicy = z.infer<typeof OffboardPolicySchema>;

export const ImportPlanSchema = z
  .strictObject({
    version: z.literal(1, { error: 'must be 1 (the only plan format so far)' }),
    solutionId: z.string({ error: 'the id of the published Tray solution to instantiate' }).min(1),
    instanceName: Template('CRM sync for {{email}}'),
    externalUserId: Template('{{sub}}').default('{{sub}}'),
    /**
     * Whom one Tray user stands for. "user" (the default): each Cognito user, so externalUserId
     * must come from `sub`. "company": one Tray user shared by every user whose externalUserId
     * renders the same (e.g. "{{custom:company_id}}"), with one auth per slot and one instance,
     * created by the company's first sign-up and reused by the later ones.
     */
    trayUserPer: z
      .enum(['user', 'company'], { error: 'must be "user" (one Tray user per Cognito user) or "company" (one per company)' })
      .default('user'),
    userName: Template('{{email}}').default('{{email}}'),
    isTestUser: z.boolean({ error: 'true or false' }).default(false),
    tray: TrayTarget.default({ region: 'us' }),
    auths: z
      .array(AuthImport, { error: 'a list of the auths to import, one per hidden auth slot' })
      .min(1, { error: 'needs at least one auth to import' }),
    configValues: z.array(ConfigValue).default([]),
    /**
     * What happens in Tray when the Cognito user is deleted. `remove` (the default) deletes the
     * instance, then the auths, then the Tray user: Tray may bill every unique auth and instance
     * of a real (non-test) user, so a deleted user left in Tray keeps costing. `disable` only
     * disables the instance, and `keep` changes nothing in Tray. Either way the ledger entry ends
     * `offboarded`: a deleted Cognito user never comes back with the same sub (a new sign-up gets
     * a new sub), so nothing is kept "for when they return".
     */
    offboarding: z
      .strictObject({
        policy: OffboardPolicySchema.default('remove'),
      })
      .default({ policy: 'remove' }),
  })
  .superRefine((plan, ctx) => {
    // A retry after a crash adopts the Tray user whose externalUserId is the one this user would
    // create. That id must therefore belong to this user alone and never change: `sub` is both;
    // an email can be reused or changed, and a fixed text is everyone's.
    const idAttributes = templateAttributes(plan.externalUserId);
    if (plan.trayUserPer === 'user' && (idAttributes.length === 0 || idAttributes.some((a) => a !== 'sub'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['externalUserId'],
        message:
          `"${plan.externalUserId}" does not identify one user for good: use "{{sub}}" (assigned by Cognito, unique and immutable), optionally with a fixed prefix such as "acme-{{sub}}". ` +
          "Another attribute (an email can change or be reused) or a fixed text would let one user's retry adopt another user's Tray account. " +
          'For one Tray user per company, set "trayUserPer": "company" and use the company\'s id, e.g. "{{custom:company_id}}".',
      });
    }
    if (plan.trayUserPer === 'company' && (idAttributes.length === 0 || idAttributes.includes('sub'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['externalUserId'],
        message:
          'with "trayUserPer": "company", render the company\'s id from an attribute every user of the company shares and cannot change, e.g. "{{custom:company_id}}" (not {{sub}}, not a fixed text)',
      });
    }
    // Exact duplicates only: Tray's slot ids are case-sensitive, so "a" and "A" are two slots.
    const seen = new Map<string, number>();
    plan.auths.forEach((auth, i) => {
      const first = seen.get(auth.externalId);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['auths', i, 'externalId'],
          message: `duplicates auths[${first}].externalId "${auth.externalId}": each auth slot is filled once`,
        });
      } else seen.set(auth.externalId, i);
    });
    // A retry recognises an auth it may have created by its name: two auths of one service with
    // the same name template would be indistinguishable.
    const names = new Map<string, number>();
    plan.auths.forEach((auth, i) => {
      const key = `${auth.serviceId}\u0000${auth.name}`;
      const first = names.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['auths', i, 'name'],
          message: `same name and serviceId as auths[${first}]: give each auth its own name, e.g. "${auth.name} (2)"`,
        });
      } else names.set(key, i);
    });
    const configSeen = new Set<string>();
    plan.configValues.forEach((config, i) => {
      if (configSeen.has(config.externalId)) {
        ctx.addIssue({ code: 'custom', path: ['configValues', i, 'externalId'], message: `"${config.externalId}" is set twice` });
      }
      configSeen.add(config.externalId);
    });
  });

export type ImportPlan = z.infer<typeof ImportPlanSchema>;
export type AuthImport = ImportPlan['auths'][number];
export type DataSource = z.infer<typeof DataSource>;
export type SecretRef = z.infer<typeof SecretRef>;

/** Parses a plan object; throws PLAN_INVALID listing every problem with its JSON path. */
export function parsePlan(input: unknown, origin = 'import plan'): ImportPlan {
  const result = ImportPlanSchema.safeParse(input, { reportInput: true });
  if (!result.success) {
    throw new ImportError('PLAN_INVALID', 'plan', `${origin} is invalid: ${formatIssues(result.error.issues)}`);
  }
  return result.data;
}

export function parsePlanJson(text: string, origin = 'import plan'): ImportPlan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ImportError('PLAN_INVALID', 'plan', `${origin} is not valid JSON: ${(e as Error).message}`);
  }
  return parsePlan(raw, origin);
}

export function loadPlanFile(path: string): ImportPlan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ImportError('PLAN_INVALID', 'plan', `cannot read the import plan at ${path}: ${(e as Error).message}`);
  }
  return parsePlanJson(text, path);
}

/**
 * The user attributes a queue message must carry for this plan: every attribute a template or
 * source refers to, plus email and name (useful to operators and the default user name).
 * `sub` and `username` are message fields of their own and are not listed.
 */
export function requiredAttributes(plan: ImportPlan): string[] {
  const names = new Set<string>(['email', 'name']);
  const addTemplate = (t: string) => templateAttributes(t).forEach((a) => names.add(a));
  [plan.instanceName, plan.externalUserId, plan.userName].forEach(addTemplate);
  for (const auth of plan.auths) {
    addTemplate(auth.name);
    for (const source of Object.values(auth.data)) {
      if (source.attribute) names.add(source.attribute);
      if (source.secret?.secretIdTemplate) addTemplate(source.secret.secretIdTemplate);
    }
  }
  for (const config of plan.configValues) if (config.attribute) names.add(config.attribute);
  names.delete('sub');
  names.delete('username');
  return [...names].sort();
}

/** Attributes a user may legitimately lack: email/name are carried when present, never demanded. */
export const OPTIONAL_ATTRIBUTES = new Set(['email', 'name']);

/** Secrets the worker must be allowed to read: exact ids, and prefixes of per-user templates. */
export function referencedSecrets(plan: ImportPlan): { ids: string[]; templatePrefixes: string[] } {
  const ids = new Set<string>();
  const prefixes = new Set<string>();
  for (const auth of plan.auths) {
    for (const source of Object.values(auth.data)) {
      if (source.secret?.secretId) ids.add(source.secret.secretId);
      if (source.secret?.secretIdTemplate) prefixes.add(source.secret.secretIdTemplate.split('{{')[0] ?? '');
    }
  }
  return { ids: [...ids].sort(), templatePrefixes: [...prefixes].sort() };
}

export const TRAY_REGION_ENDPOINTS = {
  us: 'https://tray.io/graphql',
  eu: 'https://eu1.tray.io/graphql',
  apac: 'https://ap1.tray.io/graphql',
} as const;

/** `TRAY_GRAPHQL_URL` overrides the plan (local stand-in, tests, a proxy). */
export function trayEndpoint(plan: ImportPlan, override = process.env.TRAY_GRAPHQL_URL): string {
  if (override) {
    const problem = trayUrlProblem(override, 'TRAY_GRAPHQL_URL');
    if (problem) throw new ImportError('PLAN_INVALID', 'plan', problem);
    return override;
  }
  return plan.tray.graphqlUrl ?? TRAY_REGION_ENDPOINTS[plan.tray.region ?? 'us'];
}
