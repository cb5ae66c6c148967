import { AdminConfirmSignUpCommand, SignUpCommand } from '@aws-sdk/client-cognito-identity-provider';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import pLimit from 'p-limit';
import { ENTRIES } from '../../functions/entries.js';
import type { DemoUser } from '../demo.js';
import type { CognitoEmulator } from '../emulators/cognito.js';
import type { LambdaFunction } from '../emulators/lambda.js';
import { LOCAL_SETTINGS } from './settings.js';
import type { RunOutput } from './types.js';

/**
 * Sign-ups: SignUp + AdminConfirmSignUp against cognito-local, a few at a time. Cognito then
 * invokes the post-confirmation function through the Lambda stand-in with the event it built;
 * what reached the trigger and what it could not enqueue is recorded for the verdict.
 */

/** A throwaway password meeting Cognito's default policy: these users never sign in. */
export const LOCAL_PASSWORD = 'Local-only-Passw0rd!';

type TriggerHandler = (event: PostConfirmationTriggerEvent) => Promise<PostConfirmationTriggerEvent>;

/** What happened to the sign-ups, as Cognito and the trigger saw them. */
export interface SignUpRecord {
  /** Users Cognito took, with the sub it assigned. */
  cognitoSubs: Map<DemoUser, string>;
  /** Subs of the users whose confirmation reached the trigger (from Cognito's event), with how often. */
  triggeredSubs: Map<string, number>;
  /** Subs the trigger logged an ERROR for: not enqueued. */
  enqueueFailed: Set<string>;
  /** Sign-ups attempted so far (refused ones included). */
  signedUp: number;
  /** Every sign-up has been attempted. */
  done: boolean;
}

export function newSignUpRecord(): SignUpRecord {
  return { cognitoSubs: new Map(), triggeredSubs: new Map(), enqueueFailed: new Set(), signedUp: 0, done: false };
}

let imports = 0;
/** A fresh instance of the trigger's entry module: it reads its settings from process.env when loaded (cold start). */
export async function loadTrigger(): Promise<TriggerHandler> {
  const url = new URL(`../../${ENTRIES.postConfirmation.replace(/\.ts$/, '.js')}`, import.meta.url);
  url.searchParams.set('coldStart', String(++imports));
  return ((await import(url.href)) as { handler: TriggerHandler }).handler;
}

/**
 * The post-confirmation function as the Lambda stand-in runs it for cognito-local: the trigger,
 * with what Cognito sent it and what it answered checked on the way.
 */
export function postConfirmationFunction(
  trigger: TriggerHandler,
  run: { userPoolId: string; record: SignUpRecord; problems: string[]; output: RunOutput; serving: () => boolean },
): LambdaFunction {
  const { userPoolId, record, problems, output } = run;
  return async (payload) => {
    const event = payload as PostConfirmationTriggerEvent;
    const sub = event.request?.userAttributes?.sub;
    if (sub) record.triggeredSubs.set(sub, (record.triggeredSubs.get(sub) ?? 0) + 1);
    if (event.userPoolId !== userPoolId) problems.push(`the trigger received an event for pool ${event.userPoolId}, not ${userPoolId}`);
    if (run.serving()) output.log(`post-confirmation: Cognito confirmed ${event.userName} (sub ${sub ?? '?'}), invoking the trigger`);
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
}

/** Signs every user up and confirms it; `record.done` once all have been tried. Refusals are problems, not errors. */
export async function signUpAll(run: {
  cognito: CognitoEmulator;
  userPoolId: string;
  clientId: string;
  signUps: readonly DemoUser[];
  record: SignUpRecord;
  problems: string[];
  output: RunOutput;
  verbose: boolean;
}): Promise<void> {
  const { cognito, userPoolId, clientId, record, problems, output, verbose } = run;
  const onTriggerLine = (line: string) => {
    let parsed: { level?: string; sub?: string } = {};
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      // not JSON: shown with --verbose only
    }
    if (parsed.level === 'ERROR' && parsed.sub) record.enqueueFailed.add(parsed.sub);
    if (verbose) output.log(`[post-confirmation] ${line}`);
  };
  try {
    await withConsoleLogCaptured(onTriggerLine, async () => {
      const limit = pLimit(LOCAL_SETTINGS.signUpConcurrency);
      await Promise.all(
        run.signUps.map((user) =>
          limit(async () => {
            try {
              const out = await cognito.client.send(
                new SignUpCommand({
                  ClientId: clientId,
                  Username: user.username,
                  Password: LOCAL_PASSWORD,
                  UserAttributes: signUpAttributes(user),
                }),
              );
              if (!out.UserSub) throw new Error('SignUp returned no UserSub');
              record.cognitoSubs.set(user, out.UserSub);
              await cognito.client.send(new AdminConfirmSignUpCommand({ UserPoolId: userPoolId, Username: user.username }));
            } catch (e) {
              problems.push(`Cognito refused the sign-up of ${user.username}: ${(e as Error).name}: ${(e as Error).message}`);
            }
            record.signedUp += 1;
          }),
        ),
      );
    });
  } finally {
    record.done = true;
  }
}

/** A user's attributes as SignUp takes them. Never `sub`: Cognito assigns it (real Cognito refuses one sent in). */
function signUpAttributes(user: DemoUser): { Name: string; Value: string }[] {
  return Object.entries(user.attributes)
    .filter(([name]) => name !== 'sub')
    .map(([Name, Value]) => ({ Name, Value }));
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
