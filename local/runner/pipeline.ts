import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdminConfirmSignUpCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  ListUsersCommand,
  SignUpCommand,
  type CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import { ChangeMessageVisibilityBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { clearCache } from '@middy/util';
import type { Context, PostConfirmationTriggerEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import pLimit from 'p-limit';
import { ImportError } from '../../shared/errors.js';
import { Ledger, type LedgerEntry } from '../../shared/ledger.js';
import { MASTER_TOKEN_CACHE_KEY } from '../../shared/master-token.js';
import { buildQueueMessage, DLQ_ATTRIBUTES } from '../../shared/message.js';
import { loadPlanFile, referencedSecrets, requiredAttributes, type ImportPlan } from '../../shared/plan.js';
import { renderTemplate, templateAttributes } from '../../shared/template.js';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, demoSecrets, type DemoUser } from '../demo.js';
import { startCognitoEmulator, type CognitoEmulator } from '../emulators/cognito.js';
import { startLambdaStandIn } from '../emulators/lambda.js';
import { EventSourcePoller, type SqsHandler } from '../event-source-poller.js';
import { startLocalStack, type LocalStack } from '../local-stack.js';
import { DEFAULT_TRAY_BUDGET_PER_SECOND, workerShare } from '../../shared/tray/pacer.js';
import { DEFAULT_TRAY_LATENCY_MS, type SeedSolution, type Snapshot } from '../tray-standin/index.js';
import { createProgress, type ProgressCounts } from './progress.js';
import { renderReport, renderServeHelp } from './report.js';
import { UsageError, type CognitoSummary, type DeadLetterResult, type LocalRunOptions, type LocalRunResult, type RunCounts, type RunOutput, type ServeInfo, type UserResult } from './types.js';
import { breakableAttribute, brokenUser, generateUsers, usersMissingAttributes } from './users.js';

/**
 * `npm start`: the whole pipeline on one machine, with the code that runs in AWS.
 *
 *   demo users ──(SignUp + AdminConfirmSignUp)──▶ cognito-local ──(Lambda Invoke, Cognito's own event)──▶ Lambda stand-in
 *   Lambda stand-in ──▶ functions/post-confirmation/handler.ts ──▶ SQS emulator
 *   SQS emulator ──(EventSourcePoller: Lambda's SQS semantics)──▶ functions/import-worker/handler.ts
 *   import worker ──▶ Tray (stand-in, or yours) + DynamoDB ledger; failures ──▶ DLQ with their reason
 *
 * Both handlers are the real Lambda entry points, imported after the emulators' endpoints and
 * the functions' settings are in process.env, exactly as Lambda configures them.
 */

/** The local deployment's settings: the CDK stack's defaults, scaled down so that retries take seconds. */
export const LOCAL_SETTINGS = {
  /** Long enough for a full batch at this container's share of the budget; the worker hands back what it cannot finish. */
  functionTimeoutMs: 120_000,
  /** Longer than the function timeout, as Lambda requires: an invocation in flight is never redelivered. */
  visibilityTimeoutSeconds: 150,
  maxReceiveCount: 5,
  /** The fleet's Tray budget (calls/s), as deployed by default: each concurrent invocation paces to its share. */
  trayBudgetPerSecond: DEFAULT_TRAY_BUDGET_PER_SECOND,
  /**
   * Records per invocation, gathered for up to the batching window, as Lambda's event source does.
   * Smaller than deployed (150): a local run of a few hundred users splits into more, even batches
   * over the two invocations, and each batch's users run together, so a batch loses only its
   * last round trip and the gap before the next (which the pacer's burst wins back).
   */
  batchSize: 50,
  batchingWindowMs: 500,
  /** Concurrent invocations (maxConcurrency of the event source). */
  pollers: 2,
  trayTimeoutMs: 5_000,
  enqueueTimeoutMs: 2_000,
  /** Redelivery after a transient failure: 1–2 s instead of 30 s–15 min. */
  retryBaseSeconds: 1,
  retryMaxSeconds: 2,
  signUpConcurrency: 4,
  /** The post-confirmation function's name, as cognito-local's TriggerFunctions and the Lambda stand-in know it. */
  triggerFunctionName: 'tray-auth-import-post-confirmation',
  userPoolName: 'tray-auth-import-local',
  sampleIntervalMs: 250,
} as const;

export function processOutput(): RunOutput {
  const ci = process.env.CI !== undefined && !/^(|0|false)$/i.test(process.env.CI);
  const tty = process.stderr.isTTY && !ci ? process.stderr : undefined;
  return { log: (line) => process.stdout.write(`${line}\n`), warn: (line) => process.stderr.write(`${line}\n`), tty };
}

type TriggerHandler = (event: PostConfirmationTriggerEvent) => Promise<PostConfirmationTriggerEvent>;
type WorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

let imports = 0;
/** A fresh instance of a Lambda entry module: each reads its settings from process.env when loaded (cold start). */
async function importEntry<T>(relativePath: string): Promise<T> {
  const url = new URL(relativePath, import.meta.url);
  url.searchParams.set('coldStart', String(++imports));
  return (await import(url.href)) as T;
}

/** Sets variables (undefined deletes) and returns how to put them back. */
function applyEnv(values: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  const set = (k: string, v: string | undefined) => {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  };
  for (const [k, v] of Object.entries(values)) set(k, v);
  return () => {
    for (const [k, v] of Object.entries(previous)) set(k, v);
  };
}

/** The trigger logs with console.log (plain JSON lines, as in Lambda); those lines are captured while users sign up. */
async function withConsoleLogCaptured<T>(onLine: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const original = console.log;
  console.log = (...args: unknown[]) => onLine(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  try {
    return await fn();
  } finally {
    console.log = original;
  }
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

/** 120 s, or half a second per user for big runs (Tray's rate limit allows about 6 users/s). */
export function defaultTimeoutSeconds(users: number): number {
  return Math.max(120, Math.ceil(users / 2));
}

function attributesOf(user: DemoUser): Record<string, string> {
  return { ...user.attributes, sub: user.sub, username: user.username };
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

async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
}

async function ledgerEntries(ledger: Ledger, userPoolId: string): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = [];
  for await (const entry of ledger.entries(userPoolId)) entries.push(entry);
  return entries;
}

/** Every user of the pool with its status. Follows PaginationToken, which real Cognito needs (cognito-local answers in one page). */
async function listCognitoUsers(client: CognitoIdentityProviderClient, userPoolId: string): Promise<{ username: string; status: string | undefined }[]> {
  const users: { username: string; status: string | undefined }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListUsersCommand({ UserPoolId: userPoolId, PaginationToken: token }));
    for (const u of page.Users ?? []) users.push({ username: u.Username as string, status: u.UserStatus });
    token = page.PaginationToken;
  } while (token);
  return users;
}

/** The `custom:` attributes the users carry or the plan reads: Cognito refuses any not declared in the pool's schema. */
function customAttributes(plan: ImportPlan, users: readonly DemoUser[]): string[] {
  const names = new Set([...requiredAttributes(plan), ...users.flatMap((u) => Object.keys(u.attributes))]);
  return [...names].filter((n) => n.startsWith('custom:')).sort();
}

/** A throwaway password meeting Cognito's default policy: these users never sign in. */
const LOCAL_PASSWORD = 'Local-only-Passw0rd!';

/** A user's attributes as SignUp takes them. Never `sub`: Cognito assigns it (real Cognito refuses one sent in). */
function signUpAttributes(user: DemoUser): { Name: string; Value: string }[] {
  return Object.entries(user.attributes)
    .filter(([name]) => name !== 'sub')
    .map(([Name, Value]) => ({ Name, Value }));
}

/**
 * Every message of the DLQ with its reason attributes. They are made visible again afterwards:
 * the DLQ belongs to operators (and, with --serve, to `aws sqs receive-message`).
 */
export async function readDeadLetters(sqs: SQSClient, dlqUrl: string): Promise<Message[]> {
  const messages = new Map<string, Message>();
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
    );
    const batch = out.Messages ?? [];
    if (batch.length === 0) break;
    for (const m of batch) messages.set(m.MessageId as string, m);
  }
  const all = [...messages.values()];
  for (let i = 0; i < all.length; i += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: dlqUrl,
        Entries: all.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle as string, VisibilityTimeout: 0 })),
      }),
    );
  }
  return all;
}

function toDeadLetterResult(m: Message, brokenSub: string | undefined): DeadLetterResult {
  const attr = (name: string) => m.MessageAttributes?.[name]?.StringValue;
  let body: { username?: unknown; sub?: unknown } = {};
  try {
    body = JSON.parse(m.Body ?? '') as typeof body;
  } catch {
    // An unreadable body is reported as such.
  }
  const sub = attr(DLQ_ATTRIBUTES.sub) ?? (typeof body.sub === 'string' ? body.sub : undefined);
  return {
    messageId: m.MessageId as string,
    username: typeof body.username === 'string' ? body.username : undefined,
    sub,
    errorCode: attr(DLQ_ATTRIBUTES.errorCode),
    errorStep: attr(DLQ_ATTRIBUTES.step),
    errorKind: attr(DLQ_ATTRIBUTES.kind),
    errorReason: attr(DLQ_ATTRIBUTES.reason),
    receiveCount: attr(DLQ_ATTRIBUTES.receiveCount),
    expected: brokenSub !== undefined && sub === brokenSub,
  };
}

/** Compares what the ledger says about a user with what the Tray stand-in holds. */
function crossCheck(user: DemoUser, entry: LedgerEntry, plan: ImportPlan, snapshot: Snapshot, problems: string[]): boolean {
  const before = problems.length;
  const trayUser = snapshot.users.find((u) => u.id === entry.trayUserId);
  if (!trayUser) problems.push(`Tray user ${entry.trayUserId} is not in the Tray stand-in`);
  else {
    const externalUserId = renderTemplate(plan.externalUserId, attributesOf(user));
    if (externalUserId.ok && trayUser.externalUserId !== externalUserId.value) problems.push(`Tray user's externalUserId is "${trayUser.externalUserId}", expected "${externalUserId.value}"`);
    if (trayUser.isTestUser !== plan.isTestUser) problems.push(`Tray user's isTestUser is ${trayUser.isTestUser}, the plan says ${plan.isTestUser}`);
  }
  for (const auth of plan.auths) {
    const authId = entry.authIds[auth.externalId];
    const stored = snapshot.authentications.find((a) => a.id === authId);
    if (!stored) problems.push(`authentication ${authId} (${auth.externalId}) is not in the Tray stand-in`);
    else if (stored.userId !== entry.trayUserId) problems.push(`authentication ${authId} belongs to Tray user ${stored.userId}, not ${entry.trayUserId}`);
  }
  const instance = snapshot.instances.find((i) => i.id === entry.instanceId);
  if (!instance) problems.push(`instance ${entry.instanceId} is not in the Tray stand-in`);
  else {
    if (!instance.enabled) problems.push(`instance ${instance.id} is not enabled in the Tray stand-in`);
    if (instance.owner !== entry.trayUserId) problems.push(`instance ${instance.id} belongs to Tray user ${instance.owner}, not ${entry.trayUserId}`);
    if (instance.solutionId !== plan.solutionId) problems.push(`instance ${instance.id} is of solution ${instance.solutionId}, not ${plan.solutionId}`);
    for (const auth of plan.auths) {
      const slot = instance.authValues.find((v) => v.externalId === auth.externalId);
      if (slot?.authId !== entry.authIds[auth.externalId]) problems.push(`instance ${instance.id}'s auth slot ${auth.externalId} holds ${slot?.authId ?? 'nothing'}, not ${entry.authIds[auth.externalId]}`);
    }
  }
  return problems.length === before;
}

function duplicates(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const v of values) (seen.has(v) ? dup : seen).add(v);
  return [...dup];
}

export async function runLocalPipeline(options: LocalRunOptions = {}, output: RunOutput = processOutput()): Promise<LocalRunResult> {
  const started = Date.now();
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
  const verbose = options.verbose === true;
  const notes = [...(options.notes ?? [])];

  const users = options.userList ?? generateUsers(plan, options.users ?? 10, { randomSubs: byo });
  const breakable = options.brokenUser === false ? undefined : breakableAttribute(plan);
  if (options.brokenUser !== false && !breakable) notes.push('no broken user this run: the plan reads no attribute that a user could lack.');
  const broken = breakable ? brokenUser(plan, breakable.attribute, { randomSubs: byo }) : undefined;
  // Cognito refuses a second sign-up under a username it holds.
  const taken = duplicates([...users.map((u) => u.username), ...(broken ? [broken.username] : [])]);
  if (taken.length > 0) {
    throw new UsageError(`username${taken.length > 1 ? 's' : ''} ${taken.map((u) => `"${u}"`).join(', ')} appear${taken.length > 1 ? '' : 's'} more than once${broken && taken.includes(broken.username) ? ' (the broken user is named that way; pass --no-broken-user)' : ''}: Cognito signs up a username once`);
  }
  for (const { user, missing } of usersMissingAttributes(plan, users)) {
    notes.push(`${user.username} lacks ${missing.map((m) => `"${m}"`).join(', ')}, which the plan reads: it will be dead-lettered, and the run will fail.`);
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
    notes.push(`the stand-in publishes solution "${plan.solutionId}" with exactly the slots your plan names: attributes, templates and secrets are checked, your slot ids are not (only your Tray can: --tray-url/--tray-region).`);
  }
  if (byo && !plan.isTestUser) notes.push('the plan says isTestUser: false, so these users are created in your Tray account as real (billable) users.');
  for (const note of notes) output.warn(`note: ${note}`);
  const planName = relative(process.cwd(), planFile) || planFile;
  output.log(
    `Signing up ${users.length} user${users.length === 1 ? '' : 's'}${broken ? ' + 1 broken on purpose' : ''} with plan ${planName}; Tray: ` +
      (byo ? `yours at ${options.tray?.url} (users created with isTestUser=${plan.isTestUser}, as the plan says)` : `the local stand-in, ${Math.round(faultRate * 1000) / 10}% of calls failing transiently`),
  );
  if (broken && breakable) {
    output.log(`Broken on purpose: "${broken.username}" signs up without "${breakable.attribute}", which the plan reads at ${breakable.usedAt.join(', ')}: it must end in the dead-letter queue with its reason.`);
  }

  const base = options.basePort ?? 4710;
  // cognito-local invokes the trigger through this stand-in; the trigger itself is loaded below,
  // once the functions' settings are in process.env (as Lambda loads it).
  let onPostConfirmation: (event: unknown) => Promise<unknown> = () => Promise.reject(new Error('the post-confirmation function is not loaded yet'));
  const lambda = await startLambdaStandIn({ [LOCAL_SETTINGS.triggerFunctionName]: (event) => onPostConfirmation(event) });
  const [stackStarted, cognitoStarted] = await Promise.allSettled([
    startLocalStack({
      masterToken,
      secrets,
      maxReceiveCount: LOCAL_SETTINGS.maxReceiveCount,
      visibilityTimeoutSeconds: LOCAL_SETTINGS.visibilityTimeoutSeconds,
      tray: byo ? false : { solutions: [standInSolution(plan)], randomTransientFaultRate: faultRate, latencyMs: options.trayLatencyMs ?? DEFAULT_TRAY_LATENCY_MS },
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
      if (e.code === 'EADDRINUSE') throw new UsageError(`${e.message}: another program uses one of the ports ${base}–${base + 3}; pass --base-port`);
      throw e;
    }
    // No fallback to calling the trigger directly: the run would no longer show Cognito's own event.
    const reason = cognitoStarted.status === 'rejected' ? (cognitoStarted.reason as Error).message : 'unknown';
    throw new Error(`cognito-local (the local Cognito API the demo users sign up through) could not start: ${reason}`);
  }
  const stack: LocalStack = stackStarted.value;
  const cognito: CognitoEmulator = cognitoStarted.value;
  const trayUrl = byo ? (options.tray?.url as string) : (stack.tray?.url as string);

  // The functions' settings, as the CDK stack sets them (scaled down for a local run).
  const restoreEnv = applyEnv({
    MESSAGE_ATTRIBUTES: requiredAttributes(plan).join(','),
    ENQUEUE_TIMEOUT_MS: String(LOCAL_SETTINGS.enqueueTimeoutMs),
    IMPORT_PLAN: undefined,
    IMPORT_PLAN_FILE: planFile,
    TRAY_GRAPHQL_URL: trayUrl,
    TRAY_TIMEOUT_MS: String(LOCAL_SETTINGS.trayTimeoutMs),
    RETRY_BASE_SECONDS: String(LOCAL_SETTINGS.retryBaseSeconds),
    RETRY_MAX_SECONDS: String(LOCAL_SETTINGS.retryMaxSeconds),
    TRAY_RATE_PER_SECOND: String(workerShare(LOCAL_SETTINGS.trayBudgetPerSecond, LOCAL_SETTINGS.pollers)),
    // 0: no cache. A positive value makes @middy/util re-fetch the secret on a timer forever,
    // which would keep this process alive (and call a closed emulator) after the run.
    MASTER_TOKEN_CACHE_MS: '0',
    POWERTOOLS_LOG_LEVEL: verbose ? 'INFO' : 'SILENT',
    POWERTOOLS_METRICS_DISABLED: verbose ? 'false' : 'true',
  });
  clearCache([MASTER_TOKEN_CACHE_KEY]);

  let serving = false;
  const cleanUp = async () => {
    await Promise.all([stack.close(), cognito.stop(), lambda.close()]);
    restoreEnv();
    clearCache([MASTER_TOKEN_CACHE_KEY]);
  };
  try {
    const trigger = (await importEntry<{ handler: TriggerHandler }>('../../functions/post-confirmation/handler.js')).handler;
    // One module instance per concurrent invocation, as Lambda runs one container per invocation.
    const workers = await Promise.all(
      Array.from({ length: LOCAL_SETTINGS.pollers }, async () => (await importEntry<{ handler: WorkerHandler }>('../../functions/import-worker/handler.js')).handler),
    );
    const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });

    // The pool the users sign up to, with the plan's custom attributes declared, and an app client for SignUp.
    const pool = await cognito.client.send(
      new CreateUserPoolCommand({
        PoolName: LOCAL_SETTINGS.userPoolName,
        Schema: customAttributes(plan, signUps).map((name) => ({ Name: name.slice('custom:'.length), AttributeDataType: 'String', Mutable: true })),
      }),
    );
    const userPoolId = pool.UserPool?.Id as string;
    const appClient = await cognito.client.send(new CreateUserPoolClientCommand({ UserPoolId: userPoolId, ClientName: 'npm-start' }));
    const clientId = appClient.UserPoolClient?.ClientId as string;

    const counters = { signedUp: 0, retried: 0, invocationErrors: 0, enabled: 0, deadLettered: 0, invocations: 0 };
    const cpuAtStart = process.cpuUsage();
    const enqueueFailed = new Set<string>();
    const problems: string[] = [];
    let lastInvocationError: string | undefined;

    const handlerFor = (worker: WorkerHandler): SqsHandler => async (event, context) => {
      counters.invocations += 1;
      try {
        const response = await worker(event, context);
        const failures = response?.batchItemFailures?.length ?? 0;
        counters.retried += failures;
        if (serving) output.log(`worker: batch of ${event.Records.length}, ${event.Records.length - failures} done (imported or dead-lettered), ${failures} to retry`);
        return response;
      } catch (e) {
        counters.invocationErrors += 1;
        counters.retried += event.Records.length;
        lastInvocationError = (e as Error).message;
        throw e;
      }
    };
    const poller = new EventSourcePoller({
      sqs: stack.sqs,
      queueUrl: stack.queueUrl,
      handler: workers.map(handlerFor),
      batchSize: LOCAL_SETTINGS.batchSize,
      batchingWindowMs: LOCAL_SETTINGS.batchingWindowMs,
      concurrency: LOCAL_SETTINGS.pollers,
      functionTimeoutMs: LOCAL_SETTINGS.functionTimeoutMs,
      functionName: 'tray-auth-import-worker',
    });

    // Progress: ledger and DLQ sampled a few times a second. Against the stand-in, every fault it
    // injected is a Tray call the worker retried (in the invocation, or on a later delivery).
    const trayFaults = () => stack.tray?.calls.filter((c) => c.outcome === 'fault').length ?? 0;
    const progress = createProgress(output, { bar: !verbose });
    const counts = (): ProgressCounts => ({
      signedUp: counters.signedUp,
      toSignUp: signUps.length,
      enabled: counters.enabled,
      toEnable: users.length,
      retried: counters.retried + trayFaults(),
      deadLettered: counters.deadLettered,
    });
    const sample = async () => {
      const entries = await ledgerEntries(ledger, userPoolId);
      counters.enabled = entries.filter((e) => e.status === 'enabled').length;
      const dlq = await stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.dlqUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      counters.deadLettered = Number(dlq.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(dlq.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sample().catch(() => undefined);
        progress.update(counts());
        await new Promise((r) => setTimeout(r, LOCAL_SETTINGS.sampleIntervalMs));
      }
    })();

    // Sign-ups: SignUp + AdminConfirmSignUp against cognito-local, a few at a time. Cognito then
    // invokes the post-confirmation function through the Lambda stand-in with the event it built.
    let signUpsDone = false;
    const cognitoSubs = new Map<DemoUser, string>();
    /** Subs of the users whose confirmation reached the trigger (from Cognito's event). */
    const triggeredSubs = new Map<string, number>();
    onPostConfirmation = async (payload) => {
      const event = payload as PostConfirmationTriggerEvent;
      const sub = event.request?.userAttributes?.sub;
      if (sub) triggeredSubs.set(sub, (triggeredSubs.get(sub) ?? 0) + 1);
      if (event.userPoolId !== userPoolId) problems.push(`the trigger received an event for pool ${event.userPoolId}, not ${userPoolId}`);
      if (serving) output.log(`post-confirmation: Cognito confirmed ${event.userName} (sub ${sub ?? '?'}), invoking the trigger`);
      try {
        const returned = await trigger(event);
        if (returned !== event) problems.push(`the trigger did not return the event for ${event.userName}: Cognito would fail the sign-up`);
        return returned;
      } catch (e) {
        // cognito-local logs a post-confirmation error and carries on; real Cognito would fail the call.
        problems.push(`the trigger threw for ${event.userName} (Cognito would fail the sign-up): ${(e as Error).message}`);
        throw e;
      }
    };
    const onTriggerLine = (line: string) => {
      let parsed: { level?: string; sub?: string } = {};
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        // not JSON: shown with --verbose only
      }
      if (parsed.level === 'ERROR' && parsed.sub) enqueueFailed.add(parsed.sub);
      if (verbose) output.log(`[post-confirmation] ${line}`);
    };
    const signingUp = withConsoleLogCaptured(onTriggerLine, async () => {
      const limit = pLimit(LOCAL_SETTINGS.signUpConcurrency);
      await Promise.all(
        signUps.map((user) =>
          limit(async () => {
            try {
              const out = await cognito.client.send(
                new SignUpCommand({ ClientId: clientId, Username: user.username, Password: LOCAL_PASSWORD, UserAttributes: signUpAttributes(user) }),
              );
              if (!out.UserSub) throw new Error('SignUp returned no UserSub');
              cognitoSubs.set(user, out.UserSub);
              await cognito.client.send(new AdminConfirmSignUpCommand({ UserPoolId: userPoolId, Username: user.username }));
            } catch (e) {
              problems.push(`Cognito refused the sign-up of ${user.username}: ${(e as Error).name}: ${(e as Error).message}`);
            }
            counters.signedUp += 1;
          }),
        ),
      );
    }).finally(() => {
      signUpsDone = true;
    });

    const importStarted = Date.now();
    const timeoutSeconds = options.timeoutSeconds ?? defaultTimeoutSeconds(signUps.length);
    let drained = true;
    try {
      await Promise.all([
        signingUp,
        poller.runUntil(async () => signUpsDone && (await queueDepth(stack.sqs, stack.queueUrl)) === 0, { timeoutMs: timeoutSeconds * 1000 }),
      ]);
    } catch (e) {
      drained = false;
      const message = (e as Error).message;
      problems.push(/not drained/.test(message) ? `the import queue was not drained within ${timeoutSeconds}s (--timeout)` : `the worker's event source failed: ${message}`);
    }
    sampling = false;
    await sampler;
    await sample().catch(() => undefined);
    progress.stop(counts());

    // Collect: Cognito's users, the ledger, the Tray stand-in, the DLQ, the queue.
    const cognitoUsers = await listCognitoUsers(cognito.client, userPoolId);
    const cognitoSummary: CognitoSummary = {
      endpoint: cognito.endpoint,
      userPoolId,
      clientId,
      users: cognitoUsers.length,
      confirmed: cognitoUsers.filter((u) => u.status === 'CONFIRMED').length,
      triggerInvocations: lambda.invocations[LOCAL_SETTINGS.triggerFunctionName] ?? 0,
    };
    if (cognitoSummary.users !== signUps.length) problems.push(`cognito-local holds ${cognitoSummary.users} users, expected exactly ${signUps.length}`);
    if (cognitoSummary.confirmed !== cognitoSummary.users) problems.push(`${cognitoSummary.users - cognitoSummary.confirmed} user(s) in cognito-local are not CONFIRMED`);
    if (cognitoSummary.triggerInvocations !== cognitoSubs.size) problems.push(`Cognito invoked the post-confirmation function ${cognitoSummary.triggerInvocations} times for ${cognitoSubs.size} confirmed sign-ups`);
    const entries = new Map((await ledgerEntries(ledger, userPoolId)).map((e) => [e.sub, e]));
    const snapshot = stack.tray?.snapshot();
    const deadLettered = (await readDeadLetters(stack.sqs, stack.dlqUrl)).map((m) => toDeadLetterResult(m, broken && cognitoSubs.get(broken)));
    const queueRemaining = await queueDepth(stack.sqs, stack.queueUrl);

    const results: UserResult[] = signUps.map((signUp) => {
      const expected = signUp === broken ? 'deadLettered' : 'enabled';
      // From here on the user is who Cognito made of it: its sub is the one Cognito assigned.
      const sub = cognitoSubs.get(signUp);
      const user: DemoUser = { ...signUp, sub: sub ?? '', attributes: { ...signUp.attributes, ...(sub ? { sub } : {}) } };
      const entry = sub ? entries.get(sub) : undefined;
      const dead = sub ? deadLettered.filter((d) => d.sub === sub) : [];
      const r: UserResult = {
        username: user.username,
        sub: user.sub,
        expected,
        enqueued: sub !== undefined && triggeredSubs.has(sub) && !enqueueFailed.has(sub),
        ledgerStatus: entry?.status,
        trayUserId: entry?.trayUserId,
        authIds: entry?.authIds ?? {},
        instanceId: entry?.instanceId,
        enabled: entry?.status === 'enabled' && entry.enabled,
        deadLettered: dead.length > 0,
        problems: [],
      };
      if (!sub) {
        r.problems.push('not signed up: Cognito refused it (see above)');
        return r;
      }
      if (!triggeredSubs.has(sub)) r.problems.push('Cognito never invoked the post-confirmation trigger for it');
      else if (!r.enqueued) r.problems.push('the trigger could not enqueue the sign-up (its ERROR line shows with --verbose)');
      if (expected === 'enabled') {
        if (!entry) r.problems.push('no ledger entry: the worker never took this user');
        else if (!r.enabled) r.problems.push(`ledger status "${entry.status}"${entry.lastError ? ` (${entry.lastError.code} at ${entry.lastError.step}: ${entry.lastError.message})` : ''}`);
        else {
          if (!entry.trayUserId) r.problems.push('enabled in the ledger without a Tray user id');
          if (!entry.instanceId) r.problems.push('enabled in the ledger without an instance id');
          for (const auth of plan.auths) if (!entry.authIds[auth.externalId]) r.problems.push(`enabled in the ledger without an auth id for ${auth.externalId}`);
          if (snapshot && r.problems.length === 0) r.enabledInTray = crossCheck(user, entry, plan, snapshot, r.problems);
        }
        for (const d of dead) r.problems.push(`dead-lettered: ${d.errorCode ?? 'no reason'}${d.errorReason ? `: ${d.errorReason}` : ''}`);
      } else {
        if (dead.length === 0) r.problems.push('expected in the dead-letter queue, but it is not there');
        else if (dead.length > 1) r.problems.push(`in the dead-letter queue ${dead.length} times`);
        else if (dead[0]?.errorCode !== 'MISSING_ATTRIBUTE') r.problems.push(`dead-lettered with ${dead[0]?.errorCode ?? 'no reason'}, expected MISSING_ATTRIBUTE`);
        if (entry?.trayUserId || entry?.instanceId) r.problems.push('the worker created something in Tray for it');
      }
      return r;
    });

    const known = new Set(cognitoSubs.values());
    for (const d of deadLettered) if (!d.sub || !known.has(d.sub)) problems.push(`the dead-letter queue holds a message for an unknown user (${d.sub ?? 'no sub'}): ${d.errorCode ?? 'no reason'}`);
    if (drained && queueRemaining > 0) problems.push(`${queueRemaining} message(s) still in the import queue`);
    if (counters.invocationErrors > 0) output.warn(`note: ${counters.invocationErrors} invocation(s) failed as a whole (last: ${lastInvocationError}); their records were retried.`);

    let tray: RunCounts['tray'];
    if (snapshot) {
      tray = {
        users: snapshot.users.length,
        authentications: snapshot.authentications.length,
        instances: snapshot.instances.length,
        enabledInstances: snapshot.instances.filter((i) => i.enabled).length,
      };
      const n = users.length;
      const authsPerUser = plan.auths.length;
      if (tray.users !== n) problems.push(`the Tray stand-in holds ${tray.users} users, expected exactly ${n}`);
      if (tray.authentications !== n * authsPerUser) problems.push(`the Tray stand-in holds ${tray.authentications} authentications, expected exactly ${n * authsPerUser}`);
      if (tray.instances !== n) problems.push(`the Tray stand-in holds ${tray.instances} instances, expected exactly ${n}`);
      if (tray.enabledInstances !== tray.instances) problems.push(`${tray.instances - tray.enabledInstances} instance(s) in the Tray stand-in are not enabled`);
      const dupUsers = duplicates(snapshot.users.map((u) => u.externalUserId));
      if (dupUsers.length > 0) problems.push(`duplicate Tray users for externalUserId ${dupUsers.join(', ')}`);
    }

    const result: LocalRunResult = {
      ok: false,
      mode: byo ? 'tray' : 'standin',
      trayUrl,
      planFile,
      users: results,
      deadLettered,
      counts: {
        users: signUps.length,
        signedUp: counters.signedUp - enqueueFailed.size,
        enqueueFailed: enqueueFailed.size,
        enabled: results.filter((r) => r.enabled).length,
        retried: counters.retried,
        trayFaults: stack.tray ? trayFaults() : undefined,
        deadLettered: deadLettered.length,
        invocationErrors: counters.invocationErrors,
        queueRemaining,
        tray,
        aws: {
          invocations: counters.invocations,
          dynamodbRequests: { ...stack.dynamodbRequests },
          secretReads: stack.secretsStandIn.totalReads(),
          cpuMs: (() => {
            const cpu = process.cpuUsage(cpuAtStart);
            return (cpu.user + cpu.system) / 1000;
          })(),
        },
        throughput: throughputOf(results.filter((r) => r.enabled).length, stack.tray?.calls, Date.now() - importStarted, LOCAL_SETTINGS.trayBudgetPerSecond),
      },
      problems,
      broken: broken && breakable ? { username: broken.username, attribute: breakable.attribute, usedAt: breakable.usedAt } : undefined,
      durationMs: Date.now() - started,
      cognito: cognitoSummary,
    };
    result.ok = problems.length === 0 && results.every((r) => r.problems.length === 0);
    for (const line of renderReport(result)) output.log(line);

    if (options.serve) {
      result.serve = serveInfo(stack, cognitoSummary, plan, users[0]);
      result.stop = await serve(poller, output, cleanUp);
      serving = true;
      for (const line of renderServeHelp(result.serve)) output.log(line);
    }
    return result;
  } finally {
    if (!serving) await cleanUp();
  }
}

/** Users enabled and Tray calls per second over the import, against the budget the fleet paces to. */
function throughputOf(enabled: number, calls: { rateLimited?: boolean }[] | undefined, elapsedMs: number, budgetPerSecond: number): RunCounts['throughput'] {
  const seconds = elapsedMs / 1000;
  return {
    seconds,
    usersPerSecond: enabled / seconds,
    trayRequestsPerSecond: calls === undefined ? undefined : calls.length / seconds,
    rateLimited: calls?.filter((c) => c.rateLimited).length,
    budgetPerSecond,
  };
}

function serveInfo(stack: LocalStack, cognito: CognitoSummary, plan: ImportPlan, sample: DemoUser | undefined): ServeInfo {
  let exampleMessage: string | undefined;
  let exampleAttributes: Record<string, string> = {};
  if (sample) {
    exampleAttributes = Object.fromEntries(Object.entries({ ...sample.attributes, email: 'grace@example.com', name: 'Grace Hopper' }).filter(([name]) => name !== 'sub'));
    // A Cognito sub is a UUID; the worker refuses anything else.
    const sub = '00000000-0000-4000-8000-00000000ada0';
    const attributes = { ...sample.attributes, sub, email: 'ada@example.com', name: 'Ada Lovelace' };
    exampleMessage = JSON.stringify(
      buildQueueMessage({ userPoolId: cognito.userPoolId, username: 'ada', userAttributes: attributes, attributeNames: requiredAttributes(plan), source: 'manual' }),
    );
  }
  return {
    sqs: stack.env.AWS_ENDPOINT_URL_SQS as string,
    dynamodb: stack.env.AWS_ENDPOINT_URL_DYNAMODB as string,
    secretsManager: stack.env.AWS_ENDPOINT_URL_SECRETS_MANAGER as string,
    tray: stack.tray?.url,
    queueUrl: stack.queueUrl,
    dlqUrl: stack.dlqUrl,
    tableName: stack.tableName,
    exampleMessage,
    cognito: { endpoint: cognito.endpoint, userPoolId: cognito.userPoolId, clientId: cognito.clientId, password: LOCAL_PASSWORD, exampleAttributes },
  };
}

/** --serve: the worker keeps consuming the queue until stop(). */
async function serve(poller: EventSourcePoller, output: RunOutput, cleanUp: () => Promise<void>): Promise<() => Promise<void>> {
  let stopping = false;
  const running = poller.runUntil(() => stopping, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 250 }).catch((e: unknown) => {
    output.warn(`the worker's event source stopped: ${(e as Error).message}`);
  });
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= (async () => {
      stopping = true;
      await running;
      await cleanUp();
    })());
}
