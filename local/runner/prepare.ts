import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateUserPoolClientCommand, CreateUserPoolCommand } from '@aws-sdk/client-cognito-identity-provider';
import { UsageError } from '../../cli/toolkit/errors.js';
import { ImportError } from '../../shared/errors.js';
import { type ImportPlan, loadPlanFile, referencedSecrets, requiredAttributes } from '../../shared/plan.js';
import { renderTemplate, templateAttributes } from '../../shared/template.js';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, type DemoUser, demoSecrets } from '../demo.js';
import { type CognitoEmulator, startCognitoEmulator } from '../emulators/cognito.js';
import { type LambdaFunction, type LambdaStandIn, startLambdaStandIn } from '../emulators/lambda.js';
import { type LocalStack, startLocalStack } from '../local-stack.js';
import { DEFAULT_TRAY_LATENCY_MS, type SeedSolution } from '../tray-standin/index.js';
import { LOCAL_SETTINGS } from './settings.js';
import type { LocalRunOptions, RunOutput } from './types.js';
import {
  type AttributeUse,
  attributesOf,
  breakableAttribute,
  brokenUser,
  duplicates,
  generateUsers,
  usersMissingAttributes,
} from './users.js';

/**
 * Before anything starts: the plan, the users and the secrets checked (a problem is a
 * UsageError, and nothing has started yet); then the stand-ins up and seeded.
 */

/** What this run will do, from the options and the plan. */
export interface RunPlan {
  plan: ImportPlan;
  planFile: string;
  /** Bring your own Tray (else the stand-in). */
  byo: boolean;
  faultRate: number;
  verbose: boolean;
  /** The users expected to end enabled. */
  users: DemoUser[];
  /** Everyone in sign-up order: the users, with the broken one somewhere in the middle. */
  signUps: DemoUser[];
  broken: DemoUser | undefined;
  /** The attribute the broken user lacks, and where the plan reads it. */
  breakable: AttributeUse | undefined;
  masterToken: string;
  /** Secrets to seed (secretId → SecretString). */
  secrets: Record<string, string>;
}

/** Checks the input and says what the run will do (notes on stderr, the plan of the run on stdout). */
export function planRun(options: LocalRunOptions, output: RunOutput): RunPlan {
  const planFile = options.planFile ?? fileURLToPath(DEMO_PLAN_PATH);
  let plan: ImportPlan;
  try {
    plan = loadPlanFile(planFile);
  } catch (e) {
    if (e instanceof ImportError) throw new UsageError(e.message);
    throw e;
  }
  const byo = options.tray !== undefined;
  const faultRate = options.faultRate ?? 0.1;
  const notes = [...(options.notes ?? [])];

  const users = options.userList ?? generateUsers(plan, options.users ?? 10, { randomSubs: byo });
  const breakable = options.brokenUser === false ? undefined : breakableAttribute(plan);
  if (options.brokenUser !== false && !breakable)
    notes.push('no broken user this run: the plan reads no attribute that a user could lack.');
  const broken = breakable ? brokenUser(plan, breakable.attribute, { randomSubs: byo }) : undefined;
  // Cognito refuses a second sign-up under a username it holds.
  const taken = duplicates([...users.map((u) => u.username), ...(broken ? [broken.username] : [])]);
  if (taken.length > 0) {
    throw new UsageError(
      `username${taken.length > 1 ? 's' : ''} ${taken.map((u) => `"${u}"`).join(', ')} appear${taken.length > 1 ? '' : 's'} more than once${broken && taken.includes(broken.username) ? ' (the broken user is named that way; pass --no-broken-user)' : ''}: Cognito signs up a username once`,
    );
  }
  for (const { user, missing } of usersMissingAttributes(plan, users)) {
    notes.push(
      `${user.username} lacks ${missing.map((m) => `"${m}"`).join(', ')}, which the plan reads: it will be dead-lettered, and the run will fail.`,
    );
  }
  // Sign-ups arrive while the worker runs; the broken one somewhere in the middle.
  const signUps = [...users];
  if (broken) signUps.splice(Math.floor(users.length / 2), 0, broken);

  const demo = demoSecrets();
  const masterToken = options.tray?.masterToken ?? demo.masterToken;
  const secrets = { ...(byo ? {} : demo.credentials), ...options.secrets };
  // The broken user fails before any secret is read.
  const unseeded = unseededSecrets(plan, users, secrets);
  if (unseeded.length > 0) {
    throw new UsageError(
      `the plan reads secret${unseeded.length > 1 ? 's' : ''} ${unseeded.map((s) => `"${s}"`).join(', ')}, which ${unseeded.length > 1 ? 'are' : 'is'} not seeded: ` +
        `pass --secrets-file secrets.json, e.g. {${JSON.stringify(unseeded[0])}: {"apiKey": "..."}}`,
    );
  }

  if (!byo && plan.solutionId !== DEMO_SOLUTION.id) {
    notes.push(
      `the stand-in publishes solution "${plan.solutionId}" with exactly the slots your plan names: attributes, templates and secrets are checked, your slot ids are not (only your Tray can: --tray-url/--tray-region).`,
    );
  }
  if (byo && !plan.isTestUser)
    notes.push('the plan says isTestUser: false, so these users are created in your Tray account as real (billable) users.');
  for (const note of notes) output.warn(`note: ${note}`);
  const planName = relative(process.cwd(), planFile) || planFile;
  output.log(
    `Signing up ${users.length} user${users.length === 1 ? '' : 's'}${broken ? ' + 1 broken on purpose' : ''} with plan ${planName}; Tray: ` +
      (byo
        ? `yours at ${options.tray?.url} (users created with isTestUser=${plan.isTestUser}, as the plan says)`
        : `the local stand-in, ${Math.round(faultRate * 1000) / 10}% of calls failing transiently`),
  );
  if (broken && breakable) {
    output.log(
      `Broken on purpose: "${broken.username}" signs up without "${breakable.attribute}", which the plan reads at ${breakable.usedAt.join(', ')}: it must end in the dead-letter queue with its reason.`,
    );
  }
  return { plan, planFile, byo, faultRate, verbose: options.verbose === true, users, signUps, broken, breakable, masterToken, secrets };
}

/** Secret ids the plan will read for these users that are not seeded. */
function unseededSecrets(plan: ImportPlan, users: readonly DemoUser[], secrets: Record<string, string>): string[] {
  const ids = new Set(referencedSecrets(plan).ids);
  for (const auth of plan.auths) {
    for (const source of Object.values(auth.data)) {
      const template = source.secret?.secretIdTemplate;
      // Cognito assigns the sub at sign-up: a template reading it names secrets unknown until then.
      if (!template || templateAttributes(template).includes('sub')) continue;
      for (const user of users) {
        const rendered = renderTemplate(template, attributesOf(user));
        if (rendered.ok) ids.add(rendered.value);
      }
    }
  }
  return [...ids].filter((id) => secrets[id] === undefined).sort();
}

/** Everything the run talks to, up: the local stack (SQS, DynamoDB, Secrets Manager, Tray unless yours), cognito-local and the Lambda stand-in it invokes the trigger through. */
export interface StandIns {
  stack: LocalStack;
  cognito: CognitoEmulator;
  lambda: LambdaStandIn;
  /** The Tray the worker calls: the stand-in's, or yours. */
  trayUrl: string;
  /** Where the Lambda stand-in sends cognito-local's post-confirmation invocations from now on. */
  routePostConfirmation(fn: LambdaFunction): void;
  close(): Promise<void>;
}

export async function startStandIns(
  run: RunPlan,
  options: Pick<LocalRunOptions, 'basePort' | 'serve' | 'trayLatencyMs' | 'tray'>,
): Promise<StandIns> {
  const base = options.basePort ?? 4710;
  // cognito-local invokes the trigger through this stand-in; the trigger itself is loaded later,
  // once the functions' settings are in process.env (as Lambda loads it).
  let onPostConfirmation: LambdaFunction = () => Promise.reject(new Error('the post-confirmation function is not loaded yet'));
  const lambda = await startLambdaStandIn({ [LOCAL_SETTINGS.triggerFunctionName]: (event) => onPostConfirmation(event) });
  const [stackStarted, cognitoStarted] = await Promise.allSettled([
    startLocalStack({
      masterToken: run.masterToken,
      secrets: run.secrets,
      maxReceiveCount: LOCAL_SETTINGS.maxReceiveCount,
      visibilityTimeoutSeconds: LOCAL_SETTINGS.visibilityTimeoutSeconds,
      tray: run.byo
        ? false
        : {
            solutions: [standInSolution(run.plan)],
            randomTransientFaultRate: run.faultRate,
            latencyMs: options.trayLatencyMs ?? DEFAULT_TRAY_LATENCY_MS,
          },
      ports: options.serve ? { sqs: base, dynamodb: base + 1, secretsManager: base + 2, tray: base + 3 } : undefined,
    }),
    startCognitoEmulator({ lambdaEndpoint: lambda.endpoint, triggers: { PostConfirmation: LOCAL_SETTINGS.triggerFunctionName } }),
  ]);
  if (stackStarted.status === 'rejected' || cognitoStarted.status === 'rejected') {
    await Promise.all([
      lambda.close(),
      stackStarted.status === 'fulfilled' ? stackStarted.value.close() : undefined,
      cognitoStarted.status === 'fulfilled' ? cognitoStarted.value.stop() : undefined,
    ]);
    if (stackStarted.status === 'rejected') {
      const e = stackStarted.reason as Error & { code?: string };
      if (e.code === 'EADDRINUSE')
        throw new UsageError(`${e.message}: another program uses one of the ports ${base}–${base + 3}; pass --base-port`);
      throw e;
    }
    // No fallback to calling the trigger directly: the run would no longer show Cognito's own event.
    const reason = cognitoStarted.status === 'rejected' ? (cognitoStarted.reason as Error).message : 'unknown';
    throw new Error(`cognito-local (the local Cognito API the demo users sign up through) could not start: ${reason}`);
  }
  const stack = stackStarted.value;
  const cognito = cognitoStarted.value;
  return {
    stack,
    cognito,
    lambda,
    trayUrl: run.byo ? (options.tray?.url as string) : (stack.tray?.url as string),
    routePostConfirmation: (fn) => {
      onPostConfirmation = fn;
    },
    close: async () => {
      await Promise.all([stack.close(), cognito.stop(), lambda.close()]);
    },
  };
}

/** The solution the stand-in publishes: the demo's, or one with exactly the slots a custom plan names. */
function standInSolution(plan: ImportPlan): SeedSolution {
  if (plan.solutionId === DEMO_SOLUTION.id) return DEMO_SOLUTION;
  return {
    id: plan.solutionId,
    title: `Solution for ${plan.solutionId} (stand-in)`,
    authSlots: plan.auths.map((a) => ({ externalId: a.externalId, title: a.externalId })),
    configSlots: plan.configValues.map((c) => ({ externalId: c.externalId, title: c.externalId })),
  };
}

/** The pool the users sign up to, with the plan's custom attributes declared, and an app client for SignUp. */
export async function createUserPool(
  cognito: CognitoEmulator,
  plan: ImportPlan,
  signUps: readonly DemoUser[],
): Promise<{ userPoolId: string; clientId: string }> {
  const pool = await cognito.client.send(
    new CreateUserPoolCommand({
      PoolName: LOCAL_SETTINGS.userPoolName,
      Schema: customAttributes(plan, signUps).map((name) => ({
        Name: name.slice('custom:'.length),
        AttributeDataType: 'String',
        Mutable: true,
      })),
    }),
  );
  const userPoolId = pool.UserPool?.Id as string;
  const appClient = await cognito.client.send(new CreateUserPoolClientCommand({ UserPoolId: userPoolId, ClientName: 'npm-start' }));
  return { userPoolId, clientId: appClient.UserPoolClient?.ClientId as string };
}

/** The `custom:` attributes the users carry or the plan reads: Cognito refuses any not declared in the pool's schema. */
function customAttributes(plan: ImportPlan, users: readonly DemoUser[]): string[] {
  const names = new Set([...requiredAttributes(plan), ...users.flatMap((u) => Object.keys(u.attributes))]);
  return [...names].filter((n) => n.startsWith('custom:')).sort();
}
