import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option, type OutputConfiguration } from 'commander';
import { UsageError } from '../../cli/toolkit/errors.js';
import { fraction, integer, readPlanFile } from '../../cli/toolkit/flags.js';
import { resolveLocalMasterToken } from '../../cli/toolkit/master-token.js';
import { TRAY_REGION_ENDPOINTS } from '../../shared/plan.js';
import { DEMO_PLAN_PATH } from '../demo.js';
import type { LocalRunOptions } from './types.js';
import { loadUsersFile } from './users.js';

/**
 * `npm start`'s command line. The master token is never an option value (it would land in the
 * shell history): it comes from TRAY_MASTER_TOKEN or a file.
 */
export const DEFAULT_BASE_PORT = 4710;

const latency = (value: string): number | { min: number; max: number } => {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(value);
  const [min, max] = [Number(m?.[1]), Number(m?.[2] ?? m?.[1])];
  if (!m || min > max || max > 60_000)
    throw new InvalidArgumentError('must be milliseconds, fixed (300) or a range (100-400), at most 60000.');
  return min === max ? min : { min, max };
};

const httpUrl = (value: string) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be a URL such as https://tray.io/graphql.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new InvalidArgumentError('must be an http(s) URL such as https://tray.io/graphql.');
  return url.toString();
};

export function buildCommand(): Command {
  return new Command('npm start')
    .description(
      'Runs the whole import on this machine: Cognito sign-ups go through the real post-confirmation trigger onto an SQS queue, ' +
        'the real import worker imports them into Tray (a local stand-in, or yours), and a DynamoDB ledger records the Tray ids. ' +
        'Everything else (SQS, DynamoDB, Secrets Manager) is emulated on 127.0.0.1.',
    )
    .option('--users <n>', 'demo users to sign up', integer('--users', 1, 5000), 10)
    .option(
      '--fault-rate <r>',
      'share of Tray stand-in calls that fail transiently (HTTP 500, rate limit, answer lost after the create)',
      fraction,
      0.1,
    )
    .option(
      '--tray-latency <ms>',
      "the stand-in's time per call: a range such as 100-400 (the default: a real Tray call crosses the internet) or a fixed number, e.g. 0",
      latency,
    )
    .option('--no-broken-user', 'do not sign up the user broken on purpose (the one that ends in the dead-letter queue)')
    .option(
      '--timeout <seconds>',
      'give up waiting for the queue to drain after this long (default: 120, or 0.5 s per user for bigger runs)',
      integer('--timeout', 1, 86_400),
    )
    .option('--verbose', "show the trigger's and the worker's JSON logs instead of a progress bar")
    .option('--serve', 'keep the emulators and the worker running afterwards, on fixed ports, until Ctrl-C')
    .option(
      '--base-port <port>',
      'with --serve: SQS on this port, DynamoDB +1, Secrets Manager +2, Tray stand-in +3, Tray webhook +4',
      integer('--base-port', 1024, 65_531),
      DEFAULT_BASE_PORT,
    )
    .option('--plan <file>', 'import plan to run (default: local/demo-plan.json); required with --tray-url/--tray-region')
    .option('--users-file <file>', 'sign up these users instead of generated ones: [{"username", "sub"?, "attributes": {...}}]')
    .option('--secrets-file <file>', 'secrets the plan reads, seeded into the Secrets Manager stand-in: {"secretId": {...} or "JSON text"}')
    .addOption(new Option('--tray-url <url>', 'bring your own Tray: its GraphQL endpoint').argParser(httpUrl).conflicts('trayRegion'))
    .addOption(new Option('--tray-region <region>', 'bring your own Tray: its region').choices(['us', 'eu', 'apac']))
    .option(
      '--master-token-file <path>',
      'with your own Tray: file holding the master token (else the TRAY_MASTER_TOKEN environment variable)',
    )
    .addHelpText(
      'after',
      `
Examples:
  npm start                                  10 users, 10% Tray faults, one broken user
  npm start -- --users 50 --fault-rate 0.2
  npm start -- --users 100 --tray-latency 800   a slow Tray: the worker keeps more calls in flight
  npm start -- --serve                       then explore: curl http://127.0.0.1:${DEFAULT_BASE_PORT + 3}/_standin/state
  read -rs TRAY_MASTER_TOKEN && export TRAY_MASTER_TOKEN     # your own Tray: the token is typed, not echoed
  npm start -- --tray-region eu --plan my-plan.json --secrets-file secrets.json --users 2

Exit status: 0 when every user ended as expected, 1 when not, 2 for bad options or input files.
See docs/local-run.md.`,
    )
    .allowExcessArguments(false);
}

interface Flags {
  users: number;
  trayLatency?: number | { min: number; max: number };
  faultRate: number;
  brokenUser: boolean;
  timeout?: number;
  verbose?: boolean;
  serve?: boolean;
  basePort: number;
  plan?: string;
  usersFile?: string;
  secretsFile?: string;
  trayUrl?: string;
  trayRegion?: 'us' | 'eu' | 'apac';
  masterTokenFile?: string;
}

export interface ParseContext {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where commander writes help and errors (default: the process's stdout/stderr). */
  output?: OutputConfiguration;
}

/**
 * Parses `argv` (the arguments after `npm start --`) into runner options. Throws UsageError for
 * bad input files or a missing token, and commander's CommanderError for bad flags (already
 * printed) or --help.
 */
export function parseRunOptions(argv: readonly string[], context: ParseContext = {}): LocalRunOptions {
  const env = context.env ?? process.env;
  const cwd = context.cwd ?? process.cwd();
  const command = buildCommand().exitOverride();
  if (context.output) command.configureOutput(context.output);
  command.parse([...argv], { from: 'user' });
  const flags = command.opts<Flags>();
  const given = (name: keyof Flags) => command.getOptionValueSource(name) === 'cli';
  const notes: string[] = [];

  const byo = flags.trayUrl !== undefined || flags.trayRegion !== undefined;
  if (byo && flags.plan === undefined) {
    throw new UsageError(
      "--tray-url/--tray-region needs --plan FILE: the demo plan imports into the stand-in's demo solution, which your Tray account does not have.",
    );
  }
  const planFile = flags.plan === undefined ? fileURLToPath(DEMO_PLAN_PATH) : resolve(cwd, flags.plan);
  const plan = readPlanFile(planFile);

  const options: LocalRunOptions = {
    users: flags.users,
    faultRate: flags.faultRate,
    brokenUser: flags.brokenUser,
    timeoutSeconds: flags.timeout,
    verbose: flags.verbose === true,
    serve: flags.serve === true,
    basePort: flags.basePort,
    planFile,
    notes,
    trayLatencyMs: flags.trayLatency,
  };

  if (flags.usersFile !== undefined) {
    options.userList = attempt(() => loadUsersFile(resolve(cwd, flags.usersFile as string)));
    if (given('users'))
      notes.push(`--users ${flags.users} is ignored: the ${options.userList.length} users of ${flags.usersFile} sign up instead.`);
  }
  if (flags.secretsFile !== undefined) options.secrets = readSecretsFile(resolve(cwd, flags.secretsFile));

  if (byo) {
    const url = flags.trayUrl ?? TRAY_REGION_ENDPOINTS[flags.trayRegion as 'us' | 'eu' | 'apac'];
    const tokenFile = flags.masterTokenFile === undefined ? undefined : resolve(cwd, flags.masterTokenFile);
    options.tray = { url, masterToken: resolveLocalMasterToken(tokenFile, env, (warning) => notes.push(warning)) };
    if (given('faultRate')) notes.push('--fault-rate is ignored with your own Tray: faults are injected by the stand-in only.');
    if (given('trayLatency')) notes.push('--tray-latency is ignored with your own Tray: it is as fast as it is.');
    if (flags.trayRegion && plan.tray.graphqlUrl === undefined && plan.tray.region !== flags.trayRegion) {
      notes.push(`the plan says region "${plan.tray.region ?? 'us'}"; --tray-region ${flags.trayRegion} wins for this run.`);
    }
  } else if (flags.masterTokenFile !== undefined) {
    notes.push('--master-token-file is ignored without --tray-url/--tray-region: the stand-in has its own demo token.');
  }
  return options;
}

function attempt<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** `{secretId: {...}}` or `{secretId: "JSON text"}`: credential secrets are JSON objects. */
export function readSecretsFile(path: string): Record<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read the secrets file ${path}: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError(
      `the secrets file ${path} must be a JSON object of secret id to secret value, e.g. {"acme/api": {"apiKey": "..."}}`,
    );
  }
  const secrets: Record<string, string> = {};
  for (const [id, value] of Object.entries(raw)) {
    let object: unknown = value;
    if (typeof value === 'string') {
      try {
        object = JSON.parse(value);
      } catch {
        object = undefined;
      }
    }
    if (!object || typeof object !== 'object' || Array.isArray(object)) {
      // Never echo the value: it is a credential.
      throw new UsageError(`secret "${id}" in ${path} must be a JSON object (or a string holding one), as the worker reads fields of it.`);
    }
    secrets[id] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return secrets;
}
