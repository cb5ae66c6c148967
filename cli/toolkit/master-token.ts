import { readFileSync, statSync } from 'node:fs';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { masterTokenFromSecret } from '../../shared/master-token-secret.js';
import { MIN_SECRET_LENGTH, registerSecret } from '../../shared/redact.js';
import { type MasterTokenSource, staticMasterToken } from '../../shared/tray/client.js';
import { CliError, EXIT, UsageError } from './errors.js';

/**
 * The Tray master token for the CLI and for `npm start` with your own Tray. It is never a flag
 * value (shell history, the process list): it comes from, in this order, --master-token-file,
 * --master-token-secret (CLI only), TRAY_MASTER_TOKEN, and the CLI's fallback (the stack's
 * secret). It is resolved before any Tray call, so that a missing or unreadable token is a clear
 * usage error rather than something the Tray client retries, and registered for redaction as
 * soon as it is read.
 */
export interface MasterTokenOptions {
  masterTokenSecret?: string;
  masterTokenFile?: string;
}

/** One place the token can be read from, named as the operator knows it (a flag, a variable, a stack output). */
type TokenOrigin =
  | { kind: 'file'; path: string; label: string }
  | { kind: 'secret'; id: string; label: string }
  | { kind: 'env'; token: string; label: string };

/** The origin the operator chose (flag, then environment), or undefined for the caller's fallback. */
function chosenOrigin(options: MasterTokenOptions, env: NodeJS.ProcessEnv): TokenOrigin | undefined {
  if (options.masterTokenFile && options.masterTokenSecret) {
    throw new UsageError('pass either --master-token-file or --master-token-secret, not both');
  }
  if (options.masterTokenFile) return { kind: 'file', path: options.masterTokenFile, label: '--master-token-file' };
  if (options.masterTokenSecret) return { kind: 'secret', id: options.masterTokenSecret, label: '--master-token-secret' };
  const token = env.TRAY_MASTER_TOKEN?.trim();
  if (token) return { kind: 'env', token, label: 'TRAY_MASTER_TOKEN' };
  return undefined;
}

/** Too short to redact safely from logs and errors: refused, as the worker refuses it. */
function checked(token: string, origin: TokenOrigin): string {
  if (token.length < MIN_SECRET_LENGTH) {
    throw new UsageError(
      `the Tray master token from ${origin.label} is shorter than ${MIN_SECRET_LENGTH} characters; that is not a Tray master token (copy it again from Tray's Embedded settings)`,
    );
  }
  registerSecret(token);
  return token;
}

/** A file holding only the token (trimmed); warns when other users can read it. */
export function readMasterTokenFile(path: string, warn: (text: string) => void): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
    if ((statSync(path).mode & 0o077) !== 0) warn(`--master-token-file ${path} is readable by other users; chmod 600 it`);
  } catch (e) {
    throw new UsageError(
      `--master-token-file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the path of a file holding only the token`,
    );
  }
  const token = text.trim();
  if (!token) throw new UsageError(`--master-token-file ${path} is empty; put the Tray master token in it`);
  registerSecret(token);
  return token;
}

/** A Secrets Manager secret holding the token as text or {"token": "..."}; failures are not usage errors (exit 1). */
export async function readMasterTokenSecret(client: SecretsManagerClient, id: string, origin: string): Promise<string> {
  let text: string | undefined;
  try {
    text = (await client.send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
  } catch (e) {
    throw new CliError(
      `reading the master token secret "${id}" (${origin}) failed: ${(e as Error).name}; check the id, --region and your permission secretsmanager:GetSecretValue`,
      EXIT.failures,
    );
  }
  if (text === undefined)
    throw new CliError(`secret "${id}" (${origin}) has no SecretString; store the token as text or {"token": "..."}`, EXIT.failures);
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

export interface MasterTokenResolverDeps {
  env: NodeJS.ProcessEnv;
  warn: (text: string) => void;
  secretsManager: () => SecretsManagerClient;
  /** The secret to read when no flag or variable names a token (the stack output MasterTokenSecretId); throws when there is none. */
  fallbackSecretId: () => Promise<string>;
}

/**
 * The operators' CLI: the token as a source the Tray client reads. The first read is handed over
 * once; a refresh (after a 401) reads the origin again, so a rotated secret is picked up.
 */
export async function resolveMasterToken(options: MasterTokenOptions, deps: MasterTokenResolverDeps): Promise<MasterTokenSource> {
  let origin = chosenOrigin(options, deps.env);
  if (!origin) {
    let id: string;
    try {
      id = await deps.fallbackSecretId();
    } catch (e) {
      throw new UsageError(
        `no Tray master token: set TRAY_MASTER_TOKEN, pass --master-token-file PATH or --master-token-secret SECRET_ID (never the token itself). ${(e as Error).message}`,
      );
    }
    origin = { kind: 'secret', id, label: 'the stack output MasterTokenSecretId' };
  }
  const from = origin;
  const read = async (): Promise<string> =>
    from.kind === 'file'
      ? readMasterTokenFile(from.path, deps.warn)
      : from.kind === 'secret'
        ? readMasterTokenSecret(deps.secretsManager(), from.id, from.label)
        : from.token;
  let first: string | undefined = checked(await read(), from);
  return staticMasterToken(async () => {
    if (first !== undefined) {
      const value = first;
      first = undefined;
      return value;
    }
    return read();
  });
}

/**
 * `npm start` with your own Tray: --master-token-file, else TRAY_MASTER_TOKEN (there is no
 * Secrets Manager of yours on this machine). Synchronous: it is part of parsing the options.
 */
export function resolveLocalMasterToken(file: string | undefined, env: NodeJS.ProcessEnv, warn: (text: string) => void): string {
  const origin = chosenOrigin({ masterTokenFile: file }, env);
  if (!origin || origin.kind === 'secret') {
    throw new UsageError(
      'your own Tray needs its master token: set TRAY_MASTER_TOKEN (e.g. `read -rs TRAY_MASTER_TOKEN && export TRAY_MASTER_TOKEN`) or pass --master-token-file PATH. It is never accepted as an option value: that would keep it in your shell history.',
    );
  }
  return checked(origin.kind === 'file' ? readMasterTokenFile(origin.path, warn) : origin.token, origin);
}
