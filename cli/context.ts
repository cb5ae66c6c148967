import { readFileSync, statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ImportError } from '../shared/errors.js';
import { Ledger } from '../shared/ledger.js';
import { masterTokenFromSecret } from '../shared/master-token-secret.js';
import { loadPlanFile, trayEndpoint, type ImportPlan } from '../shared/plan.js';
import { MIN_SECRET_LENGTH, registerSecret } from '../shared/redact.js';
import { trayUrlProblem } from '../shared/security-policy.js';
import { staticMasterToken, TrayClient, type MasterTokenSource } from '../shared/tray/client.js';
import type { Pacer } from '../shared/tray/pacer.js';
import { processIo, warn, type Io } from './output.js';

/**
 * Plumbing shared by every command: where the deployed resources are (the stack's outputs,
 * each overridable by a flag), the AWS clients (created on first use, or injected by tests),
 * the Tray master token, and the exit-code conventions.
 */
/**
 * Exit codes (documented in docs/operators.md and the README). Scripts can tell "you typed it
 * wrong" (2) from "AWS said no" (4), "the stack or queue is not there" (5) and "AWS could not
 * be reached" (6); 3 is `dlq list` finding messages.
 */
export const EXIT = { ok: 0, failures: 1, usage: 2, dlqNotEmpty: 3, credentials: 4, notFound: 5, network: 6 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'AccessDeniedException',
  'NotAuthorizedException',
  'TokenRefreshRequired',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
const NOT_FOUND_ERRORS = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'ResourceNotFoundException', 'UserPoolNotFoundException']);

/** Which exit code an AWS SDK (or Node network) error deserves. */
export function exitCodeForError(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  const error = e as { name?: string; code?: string; message?: string; cause?: unknown; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? '';
  const code = error?.code ?? (error?.cause as { code?: string } | undefined)?.code ?? '';
  if (CREDENTIAL_ERRORS.has(name) || /could not load credentials|credential/i.test(name)) return EXIT.credentials;
  if (NETWORK_CODES.has(code) || NETWORK_CODES.has(name) || name === 'NetworkingError' || name === 'TimeoutError' || name === 'RequestTimeout' || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|socket hang up/.test(error?.message ?? '')) {
    return EXIT.network;
  }
  if (NOT_FOUND_ERRORS.has(name) || (name === 'ValidationError' && /does not exist/i.test(error?.message ?? ''))) return EXIT.notFound;
  return EXIT.failures;
}

const HINTS: Partial<Record<ExitCode, string>> = {
  [EXIT.credentials]: 'AWS credentials are missing, expired or not allowed: log in (e.g. `aws sso login --profile NAME`), pass --profile NAME, or set AWS_PROFILE',
  [EXIT.network]: 'AWS could not be reached: check the network, proxy settings and --region',
  [EXIT.notFound]: 'not found: check --stack-name / the resource flags and --region (and --profile for the right account)',
};

export function hintFor(code: ExitCode): string | undefined {
  return HINTS[code];
}

/** An AWS failure as a CliError whose exit code says what kind of failure it was; `message` already names the error, `fix` is the hint for other failures. */
export function classifyAwsError(e: unknown, message: string, fix?: string): CliError {
  if (e instanceof CliError) return e;
  const exitCode = exitCodeForError(e);
  const hint = HINTS[exitCode] ?? fix;
  return new CliError(hint ? `${message}; ${hint}` : message, exitCode);
}

/** An error the operator can fix; the message names the flag and the fix. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.usage,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface CommandResult<T> {
  exitCode: ExitCode;
  data: T;
}

export const DEFAULT_STACK_NAME = 'TrayAuthImport';

export const STACK_OUTPUT_KEYS = [
  'QueueUrl',
  'QueueArn',
  'DeadLetterQueueUrl',
  'DeadLetterQueueArn',
  'LedgerTableName',
  'WorkerFunctionName',
  'PostConfirmationFunctionName',
  'PostConfirmationFunctionArn',
  'AlarmTopicArn',
  'UserPoolId',
  'MasterTokenSecretId',
  'TrayBudgetPerSecond',
  'TrayCallsPerUser',
] as const;
export type StackOutputKey = (typeof STACK_OUTPUT_KEYS)[number];

/** Options every command accepts (set on the program, read with optsWithGlobals). */
export interface GlobalOptions {
  stackName?: string;
  region?: string;
  /** A named profile of the shared AWS config/credentials files (like AWS_PROFILE). */
  profile?: string;
  json?: boolean;
}

/** Where the Tray master token comes from; never a flag value (shell history, process list). */
export interface MasterTokenOptions {
  masterTokenSecret?: string;
  masterTokenFile?: string;
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

type Outputs = Partial<Record<StackOutputKey, string>>;

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
  private outputs: Promise<Outputs> | undefined;

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
    this.clients = { sqs: deps.sqs, dynamodb: deps.dynamodb, cognito: deps.cognito, lambda: deps.lambda, cloudformation: deps.cloudformation, secretsManager: deps.secretsManager };
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

  /**
   * A deployed resource: the flag's value when given, else the stack output. Fails naming the
   * flag when neither is available, so the operator knows what to pass.
   */
  async setting(key: StackOutputKey, flagValue: string | undefined, flag: string): Promise<string> {
    if (flagValue) return flagValue;
    let outputs: Outputs;
    try {
      outputs = await this.stackOutputs();
    } catch (e) {
      const reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      // Not a usage error unless it is one: missing credentials, a missing stack and an unreachable endpoint each have their own exit code.
      const exitCode = exitCodeForError(e);
      const fix =
        exitCode === EXIT.credentials
          ? 'AWS credentials are missing, expired or not allowed: log in (e.g. `aws sso login`), pass --profile NAME or set AWS_PROFILE'
          : exitCode === EXIT.network
            ? 'AWS could not be reached: check the network and --region'
            : `pass ${flag}, or --stack-name with the deployed stack's name (and --region / --profile for its account)`;
      throw new CliError(`${flag} is not set and the outputs of stack "${this.stackName}" could not be read (${reason}); ${fix}`, exitCode);
    }
    const value = outputs[key];
    if (!value) {
      throw new CliError(`${flag} is not set and stack "${this.stackName}" has no output ${key}; pass ${flag}`);
    }
    return value;
  }

  /** Like setting(), but undefined instead of an error (for optional enrichment such as the ledger in `dlq list`). */
  async optionalSetting(key: StackOutputKey, flagValue: string | undefined): Promise<string | undefined> {
    if (flagValue) return flagValue;
    try {
      return (await this.stackOutputs())[key];
    } catch {
      return undefined;
    }
  }

  async ledger(tableFlag: string | undefined): Promise<Ledger> {
    const tableName = await this.setting('LedgerTableName', tableFlag, '--table');
    return new Ledger({ tableName, client: this.dynamodb });
  }

  async userPoolId(flagValue: string | undefined): Promise<string> {
    return this.setting('UserPoolId', flagValue, '--user-pool-id');
  }

  /**
   * The Tray master token, resolved before any Tray call so that a missing or unreadable token
   * is a clear CLI error rather than something the Tray client retries. Order: --master-token-file,
   * --master-token-secret, TRAY_MASTER_TOKEN, the stack's MasterTokenSecretId.
   */
  async masterToken(options: MasterTokenOptions): Promise<MasterTokenSource> {
    if (options.masterTokenFile && options.masterTokenSecret) {
      throw new CliError('pass either --master-token-file or --master-token-secret, not both');
    }
    let read: () => Promise<string>;
    if (options.masterTokenFile) {
      const path = options.masterTokenFile;
      read = async () => this.readTokenFile(path);
    } else if (options.masterTokenSecret) {
      const id = options.masterTokenSecret;
      read = () => this.readTokenSecret(id, '--master-token-secret');
    } else if (this.env.TRAY_MASTER_TOKEN?.trim()) {
      const token = this.env.TRAY_MASTER_TOKEN.trim();
      read = async () => token;
    } else {
      let id: string;
      try {
        id = await this.setting('MasterTokenSecretId', undefined, '--master-token-secret');
      } catch (e) {
        throw new CliError(
          `no Tray master token: set TRAY_MASTER_TOKEN, pass --master-token-file PATH or --master-token-secret SECRET_ID (never the token itself). ${(e as Error).message}`,
        );
      }
      read = () => this.readTokenSecret(id, 'the stack output MasterTokenSecretId');
    }
    let first: string | undefined = await read();
    if (first.length < MIN_SECRET_LENGTH) {
      // Too short to redact safely from logs and errors: refused, as the worker refuses it.
      throw new CliError(`the Tray master token from ${options.masterTokenFile ? `--master-token-file` : options.masterTokenSecret ? '--master-token-secret' : this.env.TRAY_MASTER_TOKEN?.trim() ? 'TRAY_MASTER_TOKEN' : 'the stack output MasterTokenSecretId'} is shorter than ${MIN_SECRET_LENGTH} characters; that is not a Tray master token (copy it again from Tray's Embedded settings)`);
    }
    registerSecret(first);
    // The first read is handed over once; a refresh (after a 401) reads the source again.
    return staticMasterToken(async () => {
      if (first !== undefined) {
        const value = first;
        first = undefined;
        return value;
      }
      return read();
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

  private stackOutputs(): Promise<Outputs> {
    this.outputs ??= (async () => {
      const out = await this.cloudformation.send(new DescribeStacksCommand({ StackName: this.stackName }));
      const stack = out.Stacks?.[0];
      if (!stack) throw new Error(`stack ${this.stackName} not found`);
      const outputs: Outputs = {};
      for (const o of stack.Outputs ?? []) {
        if (o.OutputKey && o.OutputValue && (STACK_OUTPUT_KEYS as readonly string[]).includes(o.OutputKey)) outputs[o.OutputKey as StackOutputKey] = o.OutputValue;
      }
      return outputs;
    })();
    return this.outputs;
  }

  private client<K extends keyof AwsClients>(key: K, make: (config: { region?: string; profile?: string }) => AwsClients[K]): AwsClients[K] {
    const existing = this.clients[key];
    if (existing) return existing as AwsClients[K];
    const c = make({ ...(this.options.region ? { region: this.options.region } : {}), ...(this.options.profile ? { profile: this.options.profile } : {}) });
    this.clients[key] = c;
    this.created.push(c);
    return c;
  }

  private readTokenFile(path: string): string {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
      if ((statSync(path).mode & 0o077) !== 0) warn(this.io, `--master-token-file ${path} is readable by other users; chmod 600 it`);
    } catch (e) {
      throw new CliError(`--master-token-file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the path of a file holding only the token`);
    }
    const token = text.trim();
    if (!token) throw new CliError(`--master-token-file ${path} is empty; put the Tray master token in it`);
    registerSecret(token);
    return token;
  }

  private async readTokenSecret(id: string, origin: string): Promise<string> {
    let text: string | undefined;
    try {
      text = (await this.secretsManager.send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
    } catch (e) {
      throw new CliError(`reading the master token secret "${id}" (${origin}) failed: ${(e as Error).name}; check the id, --region and your permission secretsmanager:GetSecretValue`, EXIT.failures);
    }
    if (text === undefined) throw new CliError(`secret "${id}" (${origin}) has no SecretString; store the token as text or {"token": "..."}`, EXIT.failures);
    registerSecret(text);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // Plain text token.
    }
    try {
      return masterTokenFromSecret(value, id);
    } catch (e) {
      throw new CliError((e as Error).message, EXIT.failures);
    }
  }
}

/** Loads and validates a plan; a bad plan is a usage error naming the flag. */
export function loadPlan(path: string | undefined, flag = '--plan'): ImportPlan {
  if (!path) throw new CliError(`${flag} FILE is required: the import plan (JSON) the worker uses`);
  try {
    return loadPlanFile(path);
  } catch (e) {
    if (e instanceof ImportError) throw new CliError(`${flag} ${path}: ${e.message}`);
    throw e;
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

export function positiveNumber(value: number | undefined, flag: string, options: { max?: number; integer?: boolean } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0 || (options.integer && !Number.isInteger(value)) || (options.max !== undefined && value > options.max)) {
    throw new CliError(`${flag} must be a positive ${options.integer ? 'integer' : 'number'}${options.max !== undefined ? ` up to ${options.max}` : ''}, not ${value}`);
  }
  return value;
}
