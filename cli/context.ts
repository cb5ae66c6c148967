import { setTimeout as delay } from 'node:timers/promises';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Ledger } from '../shared/ledger.js';
import { DEFAULT_STACK_NAME, type StackOutputKey } from '../shared/names.js';
import { type ImportPlan, trayEndpoint } from '../shared/plan.js';
import { trayUrlProblem } from '../shared/security-policy.js';
import { type MasterTokenSource, TrayClient } from '../shared/tray/client.js';
import type { Pacer } from '../shared/tray/pacer.js';
import { StackOutputs } from './stack-outputs.js';
import { CliError, type ExitCode } from './toolkit/errors.js';
import { type MasterTokenOptions, resolveMasterToken } from './toolkit/master-token.js';
import { type Io, processIo, warn } from './toolkit/output.js';

/**
 * What a command runs in: where the deployed resources are (the stack's outputs, each
 * overridable by a flag: cli/stack-outputs.ts), the AWS clients (created on first use, or
 * injected by tests) and the Tray client. Errors, exit codes, flags, output, progress and the
 * master token are the toolkit's (cli/toolkit/), shared with `npm start`.
 */

/** A command the CLI ran: its exit code and what it found (the --json document). */
export interface CommandResult<T> {
  exitCode: ExitCode;
  data: T;
}

/** Options every command accepts (set on the program, read with optsWithGlobals). */
export interface GlobalOptions {
  stackName?: string;
  region?: string;
  /** A named profile of the shared AWS config/credentials files (like AWS_PROFILE). */
  profile?: string;
  json?: boolean;
}

export interface AwsClients {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  cognito: CognitoIdentityProviderClient;
  lambda: LambdaClient;
  cloudformation: CloudFormationClient;
  secretsManager: SecretsManagerClient;
}

/** What a command needs from its surroundings; everything has a default, tests inject. */
export interface CliDeps extends Partial<AwsClients> {
  io?: Io;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Aborting stops long commands between pages/batches, with their state saved. */
  signal?: AbortSignal;
  /** Long-poll seconds when scanning a queue (1 makes an empty answer trustworthy). */
  receiveWaitSeconds?: number;
  fetch?: typeof fetch;
  /** The CLI's share of the Tray budget (default: CLI_RATE_PER_SECOND for the whole process); tests pass a faster one. */
  pacer?: Pacer;
}

export class CliContext {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  readonly json: boolean;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly signal: AbortSignal | undefined;
  readonly receiveWaitSeconds: number;
  readonly stackName: string;
  private readonly clients: Partial<AwsClients>;
  private readonly created: { destroy(): void }[] = [];
  private readonly stack: StackOutputs;

  constructor(
    private readonly options: GlobalOptions,
    private readonly deps: CliDeps = {},
  ) {
    this.io = deps.io ?? processIo();
    this.env = deps.env ?? process.env;
    this.json = options.json === true;
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => delay(ms));
    this.signal = deps.signal;
    this.receiveWaitSeconds = deps.receiveWaitSeconds ?? 1;
    this.stackName = options.stackName ?? DEFAULT_STACK_NAME;
    this.stack = new StackOutputs(this.stackName, () => this.cloudformation);
    this.clients = {
      sqs: deps.sqs,
      dynamodb: deps.dynamodb,
      cognito: deps.cognito,
      lambda: deps.lambda,
      cloudformation: deps.cloudformation,
      secretsManager: deps.secretsManager,
    };
  }

  get sqs(): SQSClient {
    return this.client('sqs', (c) => new SQSClient(c));
  }
  get dynamodb(): DynamoDBClient {
    return this.client('dynamodb', (c) => new DynamoDBClient(c));
  }
  get cognito(): CognitoIdentityProviderClient {
    // ListUsers is throttled hard (per account and pool): back off adaptively instead of failing.
    return this.client('cognito', (c) => new CognitoIdentityProviderClient({ ...c, retryMode: 'adaptive', maxAttempts: 8 }));
  }
  get lambda(): LambdaClient {
    return this.client('lambda', (c) => new LambdaClient(c));
  }
  get cloudformation(): CloudFormationClient {
    return this.client('cloudformation', (c) => new CloudFormationClient(c));
  }
  get secretsManager(): SecretsManagerClient {
    return this.client('secretsManager', (c) => new SecretsManagerClient(c));
  }

  get aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /** A deployed resource: the flag's value when given, else the stack output (cli/stack-outputs.ts). */
  setting(key: StackOutputKey, flagValue: string | undefined, flag: string): Promise<string> {
    return this.stack.setting(key, flagValue, flag);
  }

  /** Like setting(), but undefined instead of an error (for optional enrichment such as the ledger in `dlq list`). */
  optionalSetting(key: StackOutputKey, flagValue: string | undefined): Promise<string | undefined> {
    return this.stack.optionalSetting(key, flagValue);
  }

  async ledger(tableFlag: string | undefined): Promise<Ledger> {
    const tableName = await this.setting('LedgerTableName', tableFlag, '--table');
    return new Ledger({ tableName, client: this.dynamodb });
  }

  async userPoolId(flagValue: string | undefined): Promise<string> {
    return this.setting('UserPoolId', flagValue, '--user-pool-id');
  }

  /** The Tray master token (cli/toolkit/master-token.ts), falling back on the stack's secret. */
  masterToken(options: MasterTokenOptions): Promise<MasterTokenSource> {
    return resolveMasterToken(options, {
      env: this.env,
      warn: (text) => warn(this.io, text),
      secretsManager: () => this.secretsManager,
      fallbackSecretId: () => this.setting('MasterTokenSecretId', undefined, '--master-token-secret'),
    });
  }

  /** A Tray client for the plan's region (or TRAY_GRAPHQL_URL). */
  async trayClient(plan: ImportPlan | undefined, tokenOptions: MasterTokenOptions): Promise<{ tray: TrayClient; url: string }> {
    const url = this.trayUrl(plan);
    const masterToken = await this.masterToken(tokenOptions);
    return { tray: new TrayClient({ url, masterToken, timeoutMs: 15_000, fetch: this.deps.fetch, pacer: this.deps.pacer }), url };
  }

  trayUrl(plan: ImportPlan | undefined): string {
    const override = this.env.TRAY_GRAPHQL_URL;
    if (plan) return trayEndpoint(plan, override);
    if (override) {
      const problem = trayUrlProblem(override, 'TRAY_GRAPHQL_URL');
      if (problem) throw new CliError(problem);
      return override;
    }
    throw new CliError('the Tray endpoint is unknown: pass --plan FILE (its "tray" region or graphqlUrl is used) or set TRAY_GRAPHQL_URL');
  }

  /** Releases the clients this context created (injected ones belong to the caller). */
  close(): void {
    for (const c of this.created) c.destroy();
    this.created.length = 0;
  }

  private client<K extends keyof AwsClients>(
    key: K,
    make: (config: { region?: string; profile?: string }) => AwsClients[K],
  ): AwsClients[K] {
    const existing = this.clients[key];
    if (existing) return existing;
    const c = make({
      ...(this.options.region ? { region: this.options.region } : {}),
      ...(this.options.profile ? { profile: this.options.profile } : {}),
    });
    this.clients[key] = c;
    this.created.push(c);
    return c;
  }
}

/** Runs a command body with a context, closing the clients it created. */
export async function withContext<T>(options: GlobalOptions, deps: CliDeps | undefined, body: (ctx: CliContext) => Promise<T>): Promise<T> {
  const ctx = new CliContext(options, deps);
  try {
    return await body(ctx);
  } finally {
    ctx.close();
  }
}
