import type { DeadLetter } from '../../shared/dead-letter.js';
import type { DemoUser } from '../demo.js';

/** A problem with the options or input files: `npm start` prints it and exits 2 before starting anything. The CLI's, shared. */

/** What `runLocalPipeline` needs; `parseRunOptions` builds it from the command line. Everything has a default. */
export interface LocalRunOptions {
  /** Demo users to sign up (default 10). Ignored when `userList` is given. */
  users?: number;
  /** Users to sign up instead of generated ones (`--users-file`). */
  userList?: DemoUser[];
  /** Share of Tray stand-in calls answered with a transient fault (default 0.1). Stand-in only. */
  faultRate?: number;
  /** Also sign up one user who lacks an attribute the plan reads, to show the DLQ (default true). */
  brokenUser?: boolean;
  /** Keep everything running afterwards on fixed ports, until `stop()`. */
  serve?: boolean;
  /** First of the four fixed ports used with `serve` (default 4710). */
  basePort?: number;
  /** Worker and trigger logs on stdout instead of a progress bar. */
  verbose?: boolean;
  /** Give up waiting for the queue to drain after this long (default 120, or 0.5 s per user for big runs). */
  timeoutSeconds?: number;
  /** The import plan (default local/demo-plan.json). */
  planFile?: string;
  /** Bring your own Tray: its GraphQL URL and master token. Without it, the Tray stand-in. */
  tray?: { url: string; masterToken: string };
  /** Secrets to seed into the Secrets Manager stand-in (secretId → SecretString). */
  secrets?: Record<string, string>;
  /** Lines printed before the run (notes from option parsing). */
  notes?: string[];
  /** The stand-in's time per call (default DEFAULT_TRAY_LATENCY_MS: 100–400 ms). Stand-in only. */
  trayLatencyMs?: number | { min: number; max: number };
}

/** Where the runner writes. `log` is the report (stdout); `tty`, when a terminal, gets the progress bar. */
export interface RunOutput {
  log(line: string): void;
  warn(line: string): void;
  tty?: NodeJS.WriteStream | undefined;
}

export interface UserResult {
  username: string;
  sub: string;
  /** What should have happened to this user. */
  expected: 'enabled' | 'deadLettered';
  /** The trigger returned and enqueued (no ERROR line). */
  enqueued: boolean;
  ledgerStatus?: string | undefined;
  trayUserId?: string | undefined;
  /** Auth slot externalId → Tray authentication id. */
  authIds: Record<string, string>;
  instanceId?: string | undefined;
  /** Enabled according to the ledger. */
  enabled: boolean;
  /** Enabled according to the Tray stand-in (undefined against a real Tray: not checked). */
  enabledInTray?: boolean | undefined;
  deadLettered: boolean;
  /** Why this user did not end as expected (empty when it did). */
  problems: string[];
}

/** A dead-lettered message as shared/dead-letter.ts reads it; `expected` marks the user broken on purpose. */
export type DeadLetterResult = DeadLetter & { expected: boolean };

export interface RunCounts {
  users: number;
  signedUp: number;
  enqueueFailed: number;
  enabled: number;
  /** Deliveries that failed transiently and went back to the queue (batch item failures). */
  retried: number;
  /** Against the stand-in: calls it answered with an injected fault (500, rate limit, answer lost after a create). */
  trayFaults?: number | undefined;
  deadLettered: number;
  invocationErrors: number;
  /** Messages left in the import queue (visible, in flight or delayed). */
  queueRemaining: number;
  /** Against the stand-in: what Tray holds. */
  tray?: { users: number; authentications: number; instances: number; enabledInstances: number } | undefined;
  /** Over the import (from the first sign-up until the queue drained). */
  throughput?:
    | {
        seconds: number;
        usersPerSecond: number;
        trayRequestsPerSecond: number | undefined;
        rateLimited: number | undefined;
        budgetPerSecond: number;
      }
    | undefined;
  /** What the worker cost: invocations, DynamoDB requests by operation (sign-ups' trigger makes none), Secrets Manager reads. */
  aws?: { invocations: number; dynamodbRequests: Record<string, number>; secretReads: number; cpuMs: number } | undefined;
}

export interface ServeInfo {
  sqs: string;
  dynamodb: string;
  secretsManager: string;
  tray?: string | undefined;
  queueUrl: string;
  dlqUrl: string;
  tableName: string;
  /** A queue message for a user of this plan, to send by hand. */
  exampleMessage?: string | undefined;
  /** Tray's expired-auth webhook behind its local function URL (token in the Secrets Manager stand-in), and an auth to notify about. */
  webhook?: { url: string; tokenSecretName: string; exampleAuthId?: string | undefined } | undefined;
  /** What the operators' CLI needs to run the lifecycle commands (offboard, rotate, upgrade) against this stack. */
  lifecycle?: { planFile: string; masterTokenSecret: string; solutionId: string; sharedSecret?: string | undefined } | undefined;
  /** cognito-local, to sign up one more user by hand: Cognito then calls the trigger. */
  cognito?:
    | { endpoint: string; userPoolId: string; clientId: string; password: string; exampleAttributes: Record<string, string> }
    | undefined;
}

/** The Cognito API the users signed up through (cognito-local), and what it holds at the end. */
export interface CognitoSummary {
  endpoint: string;
  /** cognito-local's id for the pool this run created: the ledger is keyed by it. */
  userPoolId: string;
  clientId: string;
  /** Users ListUsers returns at the end, and how many of them are CONFIRMED. */
  users: number;
  confirmed: number;
  /** Invoke calls cognito-local made to the post-confirmation function (through the Lambda stand-in). */
  triggerInvocations: number;
}

export interface LocalRunResult {
  ok: boolean;
  mode: 'standin' | 'tray';
  trayUrl: string;
  planFile: string;
  users: UserResult[];
  deadLettered: DeadLetterResult[];
  counts: RunCounts;
  /** Run-level problems (each user's are on the user too). */
  problems: string[];
  /** The attribute the broken user lacks, and where the plan reads it. */
  broken?: { username: string; attribute: string; usedAt: string[] } | undefined;
  durationMs: number;
  /** Where the users signed up (undefined if the run stopped before the pool existed). */
  cognito?: CognitoSummary | undefined;
  /** With `serve`: the endpoints, and how to stop. */
  serve?: ServeInfo | undefined;
  stop?: (() => Promise<void>) | undefined;
}
