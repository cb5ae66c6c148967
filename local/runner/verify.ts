import { type CognitoIdentityProviderClient, ListUsersCommand } from '@aws-sdk/client-cognito-identity-provider';
import { ChangeMessageVisibilityBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { readDeadLetter } from '../../shared/dead-letter.js';
import type { Ledger, LedgerEntry } from '../../shared/ledger.js';
import type { ImportPlan } from '../../shared/plan.js';
import { renderTemplate } from '../../shared/template.js';
import type { DemoUser } from '../demo.js';
import { type LocalStack, queueDepth } from '../local-stack.js';
import type { Snapshot } from '../tray-standin/index.js';
import type { RunPlan, StandIns } from './prepare.js';
import { LOCAL_SETTINGS } from './settings.js';
import type { SignUpRecord } from './sign-ups.js';
import type { CognitoSummary, DeadLetterResult, LocalRunResult, RunCounts, UserResult } from './types.js';
import { attributesOf, duplicates } from './users.js';
import type { WorkerFleet } from './workers.js';

/**
 * The verdict: what Cognito, the ledger, the Tray stand-in, the DLQ and the import queue hold at
 * the end, each user checked against what should have happened to it, and the ledger's word
 * cross-checked against the Tray stand-in's. The runner never takes its own word for it.
 */
export interface RunFacts {
  run: RunPlan;
  standIns: StandIns;
  pool: { userPoolId: string; clientId: string };
  ledger: Ledger;
  signUps: SignUpRecord;
  workers: WorkerFleet;
  /** The queue emptied before the time limit. */
  drained: boolean;
  /** Run-level problems seen so far; the verdict adds its own. */
  problems: string[];
  /** When the run started, and the import (the first sign-up). */
  startedAt: number;
  importStartedAt: number;
  cpuAtStart: NodeJS.CpuUsage;
}

export async function verifyRun(facts: RunFacts): Promise<LocalRunResult & { cognito: CognitoSummary }> {
  const { run, standIns, pool, signUps, workers, problems } = facts;
  const { stack, cognito } = standIns;
  const { plan, broken } = run;

  // Collect: Cognito's users, the ledger, the Tray stand-in, the DLQ, the queue.
  const cognitoUsers = await listCognitoUsers(cognito.client, pool.userPoolId);
  const cognitoSummary: CognitoSummary = {
    endpoint: cognito.endpoint,
    userPoolId: pool.userPoolId,
    clientId: pool.clientId,
    users: cognitoUsers.length,
    confirmed: cognitoUsers.filter((u) => u.status === 'CONFIRMED').length,
    triggerInvocations: standIns.lambda.invocations[LOCAL_SETTINGS.triggerFunctionName] ?? 0,
  };
  if (cognitoSummary.users !== run.signUps.length)
    problems.push(`cognito-local holds ${cognitoSummary.users} users, expected exactly ${run.signUps.length}`);
  if (cognitoSummary.confirmed !== cognitoSummary.users)
    problems.push(`${cognitoSummary.users - cognitoSummary.confirmed} user(s) in cognito-local are not CONFIRMED`);
  if (cognitoSummary.triggerInvocations !== signUps.cognitoSubs.size)
    problems.push(
      `Cognito invoked the post-confirmation function ${cognitoSummary.triggerInvocations} times for ${signUps.cognitoSubs.size} confirmed sign-ups`,
    );
  const entries = new Map((await ledgerEntries(facts.ledger, pool.userPoolId)).map((e) => [e.sub, e]));
  const snapshot = stack.tray?.snapshot();
  const deadLettered = await readDeadLetters(stack.sqs, stack.dlqUrl, broken && signUps.cognitoSubs.get(broken));
  const queueRemaining = await queueDepth(stack.sqs, stack.queueUrl);

  const results = run.signUps.map((signUp) =>
    userResult(signUp, signUp === broken ? 'deadLettered' : 'enabled', { plan, signUps, entries, deadLettered, snapshot }),
  );

  const known = new Set(signUps.cognitoSubs.values());
  for (const d of deadLettered)
    if (!d.sub || !known.has(d.sub))
      problems.push(`the dead-letter queue holds a message for an unknown user (${d.sub ?? 'no sub'}): ${d.errorCode ?? 'no reason'}`);
  if (facts.drained && queueRemaining > 0) problems.push(`${queueRemaining} message(s) still in the import queue`);
  const tray = snapshot ? checkTrayHoldings(snapshot, plan, run.users.length, problems) : undefined;

  const enabled = results.filter((r) => r.enabled).length;
  const result: LocalRunResult & { cognito: CognitoSummary } = {
    ok: false,
    mode: run.byo ? 'tray' : 'standin',
    trayUrl: standIns.trayUrl,
    planFile: run.planFile,
    users: results,
    deadLettered,
    counts: {
      users: run.signUps.length,
      signedUp: signUps.signedUp - signUps.enqueueFailed.size,
      enqueueFailed: signUps.enqueueFailed.size,
      enabled,
      retried: workers.counters.retried,
      trayFaults: stack.tray ? trayFaults(stack) : undefined,
      deadLettered: deadLettered.length,
      invocationErrors: workers.counters.invocationErrors,
      queueRemaining,
      tray,
      aws: {
        invocations: workers.counters.invocations,
        dynamodbRequests: { ...stack.dynamodbRequests },
        secretReads: stack.secretsStandIn.totalReads(),
        cpuMs: (() => {
          const cpu = process.cpuUsage(facts.cpuAtStart);
          return (cpu.user + cpu.system) / 1000;
        })(),
      },
      throughput: throughputOf(enabled, stack.tray?.calls, Date.now() - facts.importStartedAt, LOCAL_SETTINGS.trayBudgetPerSecond),
    },
    problems,
    broken:
      broken && run.breakable ? { username: broken.username, attribute: run.breakable.attribute, usedAt: run.breakable.usedAt } : undefined,
    durationMs: Date.now() - facts.startedAt,
    cognito: cognitoSummary,
  };
  result.ok = problems.length === 0 && results.every((r) => r.problems.length === 0);
  return result;
}

/** Tray calls the stand-in answered with an injected fault: each is one the worker retried. */
export function trayFaults(stack: LocalStack): number {
  return stack.tray?.calls.filter((c) => c.outcome === 'fault').length ?? 0;
}

export async function ledgerEntries(ledger: Ledger, userPoolId: string): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = [];
  for await (const entry of ledger.entries(userPoolId)) entries.push(entry);
  return entries;
}

/** Every user of the pool with its status. Follows PaginationToken, which real Cognito needs (cognito-local answers in one page). */
async function listCognitoUsers(
  client: CognitoIdentityProviderClient,
  userPoolId: string,
): Promise<{ username: string; status: string | undefined }[]> {
  const users: { username: string; status: string | undefined }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListUsersCommand({ UserPoolId: userPoolId, PaginationToken: token }));
    for (const u of page.Users ?? []) users.push({ username: u.Username as string, status: u.UserStatus });
    token = page.PaginationToken;
  } while (token);
  return users;
}

/**
 * Every message of the DLQ, with its reason attributes; `expected` marks the user broken on
 * purpose. The messages are made visible again afterwards: the DLQ belongs to operators (and,
 * with --serve, to `aws sqs receive-message`).
 */
async function readDeadLetters(sqs: SQSClient, dlqUrl: string, brokenSub: string | undefined): Promise<DeadLetterResult[]> {
  const messages = new Map<string, Message>();
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
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
  return all.map((m) => {
    const deadLetter = readDeadLetter(m);
    return { ...deadLetter, expected: brokenSub !== undefined && deadLetter.sub === brokenSub };
  });
}

/** One user's end, against what should have happened to it: enabled (and so in Tray), or dead-lettered for the attribute it lacks. */
function userResult(
  signUp: DemoUser,
  expected: UserResult['expected'],
  found: {
    plan: ImportPlan;
    signUps: SignUpRecord;
    entries: Map<string, LedgerEntry>;
    deadLettered: DeadLetterResult[];
    snapshot: Snapshot | undefined;
  },
): UserResult {
  const { plan, signUps, snapshot } = found;
  // From here on the user is who Cognito made of it: its sub is the one Cognito assigned.
  const sub = signUps.cognitoSubs.get(signUp);
  const user: DemoUser = { ...signUp, sub: sub ?? '', attributes: { ...signUp.attributes, ...(sub ? { sub } : {}) } };
  const entry = sub ? found.entries.get(sub) : undefined;
  const dead = sub ? found.deadLettered.filter((d) => d.sub === sub) : [];
  const r: UserResult = {
    username: user.username,
    sub: user.sub,
    expected,
    enqueued: sub !== undefined && signUps.triggeredSubs.has(sub) && !signUps.enqueueFailed.has(sub),
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
  if (!signUps.triggeredSubs.has(sub)) r.problems.push('Cognito never invoked the post-confirmation trigger for it');
  else if (!r.enqueued) r.problems.push('the trigger could not enqueue the sign-up (its ERROR line shows with --verbose)');
  if (expected === 'enabled') {
    if (!entry) r.problems.push('no ledger entry: the worker never took this user');
    else if (!r.enabled)
      r.problems.push(
        `ledger status "${entry.status}"${entry.lastError ? ` (${entry.lastError.code} at ${entry.lastError.step}: ${entry.lastError.message})` : ''}`,
      );
    else {
      if (!entry.trayUserId) r.problems.push('enabled in the ledger without a Tray user id');
      if (!entry.instanceId) r.problems.push('enabled in the ledger without an instance id');
      for (const auth of plan.auths)
        if (!entry.authIds[auth.externalId]) r.problems.push(`enabled in the ledger without an auth id for ${auth.externalId}`);
      if (snapshot && r.problems.length === 0) r.enabledInTray = crossCheck(user, entry, plan, snapshot, r.problems);
    }
    for (const d of dead) r.problems.push(`dead-lettered: ${d.errorCode ?? 'no reason'}${d.reason ? `: ${d.reason}` : ''}`);
  } else {
    if (dead.length === 0) r.problems.push('expected in the dead-letter queue, but it is not there');
    else if (dead.length > 1) r.problems.push(`in the dead-letter queue ${dead.length} times`);
    else if (dead[0]?.errorCode !== 'MISSING_ATTRIBUTE')
      r.problems.push(`dead-lettered with ${dead[0]?.errorCode ?? 'no reason'}, expected MISSING_ATTRIBUTE`);
    if (entry?.trayUserId || entry?.instanceId) r.problems.push('the worker created something in Tray for it');
  }
  return r;
}

/** Compares what the ledger says about a user with what the Tray stand-in holds. */
function crossCheck(user: DemoUser, entry: LedgerEntry, plan: ImportPlan, snapshot: Snapshot, problems: string[]): boolean {
  const before = problems.length;
  const trayUser = snapshot.users.find((u) => u.id === entry.trayUserId);
  if (!trayUser) problems.push(`Tray user ${entry.trayUserId} is not in the Tray stand-in`);
  else {
    const externalUserId = renderTemplate(plan.externalUserId, attributesOf(user));
    if (externalUserId.ok && trayUser.externalUserId !== externalUserId.value)
      problems.push(`Tray user's externalUserId is "${trayUser.externalUserId}", expected "${externalUserId.value}"`);
    if (trayUser.isTestUser !== plan.isTestUser)
      problems.push(`Tray user's isTestUser is ${trayUser.isTestUser}, the plan says ${plan.isTestUser}`);
  }
  for (const auth of plan.auths) {
    const authId = entry.authIds[auth.externalId];
    const stored = snapshot.authentications.find((a) => a.id === authId);
    if (!stored) problems.push(`authentication ${authId} (${auth.externalId}) is not in the Tray stand-in`);
    else if (stored.userId !== entry.trayUserId)
      problems.push(`authentication ${authId} belongs to Tray user ${stored.userId}, not ${entry.trayUserId}`);
  }
  const instance = snapshot.instances.find((i) => i.id === entry.instanceId);
  if (!instance) problems.push(`instance ${entry.instanceId} is not in the Tray stand-in`);
  else {
    if (!instance.enabled) problems.push(`instance ${instance.id} is not enabled in the Tray stand-in`);
    if (instance.owner !== entry.trayUserId)
      problems.push(`instance ${instance.id} belongs to Tray user ${instance.owner}, not ${entry.trayUserId}`);
    if (instance.solutionId !== plan.solutionId)
      problems.push(`instance ${instance.id} is of solution ${instance.solutionId}, not ${plan.solutionId}`);
    for (const auth of plan.auths) {
      const slot = instance.authValues.find((v) => v.externalId === auth.externalId);
      if (slot?.authId !== entry.authIds[auth.externalId])
        problems.push(
          `instance ${instance.id}'s auth slot ${auth.externalId} holds ${slot?.authId ?? 'nothing'}, not ${entry.authIds[auth.externalId]}`,
        );
    }
  }
  return problems.length === before;
}

/** What the Tray stand-in holds: exactly one user, one authentication per slot and one enabled instance per good user. */
function checkTrayHoldings(snapshot: Snapshot, plan: ImportPlan, goodUsers: number, problems: string[]): NonNullable<RunCounts['tray']> {
  const tray = {
    users: snapshot.users.length,
    authentications: snapshot.authentications.length,
    instances: snapshot.instances.length,
    enabledInstances: snapshot.instances.filter((i) => i.enabled).length,
  };
  const n = goodUsers;
  const authsPerUser = plan.auths.length;
  if (tray.users !== n) problems.push(`the Tray stand-in holds ${tray.users} users, expected exactly ${n}`);
  if (tray.authentications !== n * authsPerUser)
    problems.push(`the Tray stand-in holds ${tray.authentications} authentications, expected exactly ${n * authsPerUser}`);
  if (tray.instances !== n) problems.push(`the Tray stand-in holds ${tray.instances} instances, expected exactly ${n}`);
  if (tray.enabledInstances !== tray.instances)
    problems.push(`${tray.instances - tray.enabledInstances} instance(s) in the Tray stand-in are not enabled`);
  const dupUsers = duplicates(snapshot.users.map((u) => u.externalUserId));
  if (dupUsers.length > 0) problems.push(`duplicate Tray users for externalUserId ${dupUsers.join(', ')}`);
  return tray;
}

/** Users enabled and Tray calls per second over the import, against the budget the fleet paces to. */
function throughputOf(
  enabled: number,
  calls: { rateLimited?: boolean }[] | undefined,
  elapsedMs: number,
  budgetPerSecond: number,
): RunCounts['throughput'] {
  const seconds = elapsedMs / 1000;
  return {
    seconds,
    usersPerSecond: enabled / seconds,
    trayRequestsPerSecond: calls === undefined ? undefined : calls.length / seconds,
    rateLimited: calls?.filter((c) => c.rateLimited).length,
    budgetPerSecond,
  };
}
