import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';

/**
 * cognito-local (npm, MIT, pinned devDependency) as a child process on 127.0.0.1: a real
 * Cognito API for the real CognitoIdentityProviderClient. Its state lives in `.cognito/` under
 * its working directory, so each instance gets a temp dir, removed on stop.
 *
 * What it lacks: ListUsers ignores Limit and PaginationToken (one page), and it invokes
 * triggers from its own config (`TriggerFunctions`, through `LambdaClient`), not from the
 * pool's LambdaConfig. SignUp also takes a `sub` in UserAttributes (real Cognito refuses it)
 * and then returns a different UserSub: never send one.
 */
export interface CognitoEmulatorOptions {
  /** Where cognito-local sends Lambda `Invoke` calls for triggers (see ./lambda.ts). */
  lambdaEndpoint?: string;
  /** Trigger name (e.g. PostConfirmation) → Lambda function name, for every pool. */
  triggers?: Record<string, string>;
  /** Fixed port; default 0 (the OS picks a free one). */
  port?: number;
}

export interface CognitoEmulator {
  endpoint: string;
  client: CognitoIdentityProviderClient;
  /** Uses no `this`: safe to destructure. */
  stop: () => Promise<void>;
}

const require = createRequire(import.meta.url);
const START_TIMEOUT_MS = 15_000;

export async function startCognitoEmulator(options: CognitoEmulatorOptions = {}): Promise<CognitoEmulator> {
  const dir = mkdtempSync(join(tmpdir(), 'cognito-local-'));
  const config: Record<string, unknown> = {
    // Its pools default to the e-mail as username (username = sub). Plain usernames, distinct from
    // the sub, are what real pools of this project have. Only this config replaces that default:
    // CreateUserPool's `UsernameAttributes: []` is deep-merged into ["email"] and changes nothing.
    UserPoolDefaults: { UsernameAttributes: [] },
  };
  if (options.lambdaEndpoint) {
    config.LambdaClient = {
      endpoint: options.lambdaEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    };
  }
  if (options.triggers) config.TriggerFunctions = options.triggers;
  mkdirSync(join(dir, '.cognito'));
  writeFileSync(join(dir, '.cognito', 'config.json'), JSON.stringify(config));

  let script: string;
  try {
    script = join(require.resolve('cognito-local/package.json'), '..', 'lib', 'bin', 'start.js');
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cognito-local is not installed (a devDependency: run npm ci): ${(e as Error).message}`);
  }
  // PORT=0: the OS picks a free port, which the start line reports (no race on a guessed port).
  const child = spawn(process.execPath, [script], {
    cwd: dir,
    env: { ...process.env, PORT: String(options.port ?? 0), HOST: '127.0.0.1', NODE_NO_WARNINGS: '1', DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stopChild = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  let endpoint: string;
  try {
    endpoint = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(
        () => reject(new Error(`cognito-local did not start within ${START_TIMEOUT_MS / 1000} s: ${seen.slice(-500)}`)),
        START_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        // eslint-disable-next-line no-control-regex
        const match = /running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen.replace(/\u001b\[[0-9;]*m/g, ''));
        if (match?.[1]) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stderr?.off('data', onData);
          resolve(match[1]);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cognito-local could not be started: ${e.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`cognito-local exited with ${code ?? signal} before it listened: ${seen.slice(-500)}`));
      });
    });
  } catch (e) {
    await stopChild();
    throw e;
  }
  // Its log (one line per request, and trigger errors) is not ours to print; keep the pipes drained.
  child.stdout?.resume();
  child.stderr?.resume();

  const client = new CognitoIdentityProviderClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    endpoint,
    client,
    stop: async () => {
      client.destroy();
      await stopChild();
    },
  };
}
