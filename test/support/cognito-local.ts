import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdminConfirmSignUpCommand,
  AdminGetUserCommand,
  AdminCreateUserCommand,
  CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';

/**
 * cognito-local (npm, MIT) as a child process on 127.0.0.1 for the CLI's tests: the real
 * CognitoIdentityProviderClient talks to it. Its state lives in `.cognito/` under its working
 * directory, so each instance gets a temp dir that is removed on stop.
 *
 * What it lacks (and the tests keep a mock for): ListUsers ignores Limit and PaginationToken
 * (one page), and triggers come from its own config, not the pool's LambdaConfig.
 */
export interface CognitoLocal {
  endpoint: string;
  client: CognitoIdentityProviderClient;
  /** A new pool (each test its own, so users never leak between tests). */
  createPool(name?: string): Promise<string>;
  /** SignUp + AdminConfirmSignUp: a CONFIRMED user as the trigger would see it. Returns the sub. */
  confirmedUser(poolId: string, username: string, attributes?: Record<string, string>): Promise<string>;
  /** AdminCreateUser without a password change: FORCE_CHANGE_PASSWORD. Returns the sub. */
  adminCreatedUser(poolId: string, username: string, attributes?: Record<string, string>): Promise<string>;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

export async function startCognitoLocal(): Promise<CognitoLocal> {
  const dir = mkdtempSync(join(tmpdir(), 'cognito-local-'));
  // Its default pools use the e-mail as username; plain usernames (and username ≠ sub) are the case the CLI must handle.
  mkdirSync(join(dir, '.cognito'));
  writeFileSync(join(dir, '.cognito', 'config.json'), JSON.stringify({ UserPoolDefaults: { UsernameAttributes: [] } }));
  const script = join(require.resolve('cognito-local/package.json'), '..', 'lib', 'bin', 'start.js');
  // PORT=0: the OS picks a free port, which the start line reports (no race on a guessed port).
  const child = spawn(process.execPath, [script], {
    cwd: dir,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', NODE_NO_WARNINGS: '1', DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`cognito-local did not start within 15 s: ${seen.slice(-500)}`)), 15_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      // eslint-disable-next-line no-control-regex
      const match = /running on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen.replace(/\u001b\[[0-9;]*m/g, ''));
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cognito-local exited with ${code}: ${seen.slice(-500)}`));
    });
  });
  const client = new CognitoIdentityProviderClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  let clientIds = new Map<string, string>();

  const appClient = async (poolId: string): Promise<string> => {
    const known = clientIds.get(poolId);
    if (known) return known;
    const out = await client.send(new CreateUserPoolClientCommand({ UserPoolId: poolId, ClientName: 'tests' }));
    const id = out.UserPoolClient?.ClientId as string;
    clientIds.set(poolId, id);
    return id;
  };
  const subOf = async (poolId: string, username: string): Promise<string> => {
    const user = await client.send(new AdminGetUserCommand({ UserPoolId: poolId, Username: username }));
    return user.UserAttributes?.find((a) => a.Name === 'sub')?.Value as string;
  };
  const toList = (attributes: Record<string, string>) => Object.entries(attributes).map(([Name, Value]) => ({ Name, Value }));

  return {
    endpoint,
    client,
    async createPool(name = 'tests') {
      // custom:tenant_id: the attribute the demo plan reads (Cognito refuses custom attributes not in the schema).
      const out = await client.send(new CreateUserPoolCommand({ PoolName: name, Schema: [{ Name: 'tenant_id', AttributeDataType: 'String', Mutable: true }] }));
      return out.UserPool?.Id as string;
    },
    async confirmedUser(poolId, username, attributes = {}) {
      await client.send(new SignUpCommand({ ClientId: await appClient(poolId), Username: username, Password: 'Passw0rd!-not-secret', UserAttributes: toList(attributes) }));
      await client.send(new AdminConfirmSignUpCommand({ UserPoolId: poolId, Username: username }));
      return subOf(poolId, username);
    },
    async adminCreatedUser(poolId, username, attributes = {}) {
      await client.send(new AdminCreateUserCommand({ UserPoolId: poolId, Username: username, UserAttributes: toList(attributes), MessageAction: 'SUPPRESS' }));
      return subOf(poolId, username);
    },
    async stop() {
      client.destroy();
      clientIds = new Map();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
