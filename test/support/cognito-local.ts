import {
  AdminConfirmSignUpCommand,
  AdminCreateUserCommand,
  AdminGetUserCommand,
  type CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { startCognitoEmulator } from '../../local/emulators/cognito.js';

/**
 * cognito-local (npm, MIT) for the CLI's tests, started by local/emulators/cognito.ts (a child
 * process on 127.0.0.1, state in a temp dir): the real CognitoIdentityProviderClient talks to it.
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

export async function startCognitoLocal(): Promise<CognitoLocal> {
  // No triggers: the CLI's tests call the handlers themselves.
  const { endpoint, client, stop } = await startCognitoEmulator();
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
      const out = await client.send(
        new CreateUserPoolCommand({ PoolName: name, Schema: [{ Name: 'tenant_id', AttributeDataType: 'String', Mutable: true }] }),
      );
      return out.UserPool?.Id as string;
    },
    async confirmedUser(poolId, username, attributes = {}) {
      await client.send(
        new SignUpCommand({
          ClientId: await appClient(poolId),
          Username: username,
          Password: 'Passw0rd!-not-secret',
          UserAttributes: toList(attributes),
        }),
      );
      await client.send(new AdminConfirmSignUpCommand({ UserPoolId: poolId, Username: username }));
      return subOf(poolId, username);
    },
    async adminCreatedUser(poolId, username, attributes = {}) {
      await client.send(
        new AdminCreateUserCommand({
          UserPoolId: poolId,
          Username: username,
          UserAttributes: toList(attributes),
          MessageAction: 'SUPPRESS',
        }),
      );
      return subOf(poolId, username);
    },
    async stop() {
      clientIds = new Map();
      await stop();
    },
  };
}
