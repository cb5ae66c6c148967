import * as z from 'zod';
import type { Step } from '../errors.js';

/**
 * Tray Embedded GraphQL documents and the zod schemas of their answers. Each document is held
 * to Tray's published schema (shared/tray/tray-schema.graphql) by test/tray-schema.test.ts,
 * which finds every exported document here: add new ones here too. Every value travels as
 * a GraphQL variable: building documents by interpolation would let a user's name inject
 * GraphQL. `Json` arguments are JSON-encoded strings (Tray's rule), encoded by the client.
 *
 * `TRAY_OPERATIONS` (at the end) holds what the client needs to know of each operation in one
 * descriptor: document, answer schema, token kind, whether a re-send is safe, and step.
 */

const Connection = <T extends z.ZodType>(node: T) =>
  z.object({
    edges: z.array(z.object({ node, cursor: z.string().nullish() })),
    pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullish() }),
  });

export const CREATE_EXTERNAL_USER = /* GraphQL */ `
  mutation CreateExternalUser($name: String!, $externalUserId: String!, $isTestUser: Boolean) {
    createExternalUser(input: { name: $name, externalUserId: $externalUserId, isTestUser: $isTestUser }) { userId }
  }`;
export const CreateExternalUserResult = z.object({ createExternalUser: z.object({ userId: z.string().min(1) }) });

export const AUTHORIZE = /* GraphQL */ `
  mutation Authorize($userId: ID!) { authorize(input: { userId: $userId }) { accessToken } }`;
export const AuthorizeResult = z.object({ authorize: z.object({ accessToken: z.string().min(1) }) });

export const FIND_USERS = /* GraphQL */ `
  query FindUsers($externalUserId: String, $first: Int, $after: String) {
    users(criteria: { externalUserId: $externalUserId }, first: $first, after: $after) {
      edges { node { id name externalUserId } cursor }
      pageInfo { hasNextPage endCursor }
    }
  }`;
export const TrayUserNode = z.object({ id: z.string(), name: z.string().nullish(), externalUserId: z.string().nullish() });
export const FindUsersResult = z.object({ users: Connection(TrayUserNode) });

export const CREATE_USER_AUTHENTICATION = /* GraphQL */ `
  mutation CreateUserAuthentication(
    $name: String!, $serviceId: String!, $serviceEnvironmentId: String!,
    $data: Json!, $formData: Json, $scopes: [String!], $hidden: Boolean
  ) {
    createUserAuthentication(input: {
      name: $name, serviceId: $serviceId, serviceEnvironmentId: $serviceEnvironmentId,
      data: $data, formData: $formData, scopes: $scopes, hidden: $hidden
    }) { authenticationId }
  }`;
export const CreateUserAuthenticationResult = z.object({
  createUserAuthentication: z.object({ authenticationId: z.string().min(1) }),
});

export const AuthenticationNode = z.object({
  id: z.string(),
  name: z.string(),
  service: z.object({ id: z.string() }).nullish(),
  serviceEnvironment: z.object({ id: z.string() }).nullish(),
});

/** Tray's `viewer.authentications` takes no arguments and its edges have no cursor: all of the user's auths at once. */
export const LIST_AUTHENTICATIONS = /* GraphQL */ `
  query ListAuthentications {
    viewer {
      authentications {
        edges { node { id name service { id name version title } serviceEnvironment { id title } } }
        pageInfo { hasNextPage }
      }
    }
  }`;
export const ListAuthenticationsResult = z.object({
  viewer: z.object({
    authentications: z.object({
      edges: z.array(z.object({ node: AuthenticationNode })),
      pageInfo: z.object({ hasNextPage: z.boolean() }),
    }),
  }),
});

export const CREATE_SOLUTION_INSTANCE = /* GraphQL */ `
  mutation CreateSolutionInstance(
    $solutionId: ID!, $instanceName: String!, $authValues: [AuthValue!], $configValues: [ConfigValue!]
  ) {
    createSolutionInstance(input: {
      solutionId: $solutionId, instanceName: $instanceName, authValues: $authValues, configValues: $configValues
    }) { solutionInstance { id name enabled created } }
  }`;
export const SolutionInstanceSummary = z.object({ id: z.string().min(1), enabled: z.boolean() }).loose();
export const CreateSolutionInstanceResult = z.object({
  createSolutionInstance: z.object({ solutionInstance: SolutionInstanceSummary }),
});

export const UPDATE_SOLUTION_INSTANCE = /* GraphQL */ `
  mutation UpdateSolutionInstance(
    $solutionInstanceId: ID!, $enabled: Boolean, $authValues: [AuthValue!], $configValues: [ConfigValue!],
    $errorOnEnablingWithMissingValues: Boolean
  ) {
    updateSolutionInstance(input: {
      solutionInstanceId: $solutionInstanceId, enabled: $enabled, authValues: $authValues,
      configValues: $configValues, errorOnEnablingWithMissingValues: $errorOnEnablingWithMissingValues
    }) { solutionInstance { id enabled } }
  }`;
export const UpdateSolutionInstanceResult = z.object({
  updateSolutionInstance: z.object({ solutionInstance: SolutionInstanceSummary }),
});

export const LIST_SOLUTION_INSTANCES = /* GraphQL */ `
  query ListSolutionInstances($solutionId: String, $owner: String, $id: String, $first: Int, $after: String) {
    viewer {
      solutionInstances(criteria: { solutionId: $solutionId, owner: $owner, id: $id }, first: $first, after: $after) {
        edges { node { id name enabled created owner solution { id } authValues { externalId authId } configValues { externalId value } solutionVersionFlags { hasNewerVersion requiresUserInputToUpdateVersion requiresSystemInputToUpdateVersion } } cursor }
        pageInfo { hasNextPage endCursor }
      }
    }
  }`;
export const SolutionInstanceNode = z.object({
  id: z.string(),
  name: z.string(),
  enabled: z.boolean(),
  created: z.string().nullish(),
  owner: z.string().nullish(),
  solution: z.object({ id: z.string() }).nullish(),
  authValues: z.array(z.object({ externalId: z.string(), authId: z.string() })).nullish(),
  configValues: z.array(z.object({ externalId: z.string(), value: z.unknown() })).nullish(),
  solutionVersionFlags: z
    .object({
      hasNewerVersion: z.boolean(),
      requiresUserInputToUpdateVersion: z.boolean(),
      requiresSystemInputToUpdateVersion: z.boolean(),
    })
    .nullish(),
});
export const ListSolutionInstancesResult = z.object({
  viewer: z.object({ solutionInstances: Connection(SolutionInstanceNode) }),
});

export const LIST_SOLUTIONS = /* GraphQL */ `
  query ListSolutions($first: Int, $after: String) {
    viewer {
      solutions(first: $first, after: $after) {
        edges { node { id title tags configSlots { externalId title defaultValue } authSlots { externalId title } } cursor }
        pageInfo { hasNextPage endCursor }
      }
    }
  }`;
export const SolutionNode = z.object({
  id: z.string(),
  title: z.string(),
  tags: z.array(z.string()).nullish(),
  configSlots: z.array(z.object({ externalId: z.string(), title: z.string().nullish(), defaultValue: z.unknown() })),
  authSlots: z.array(z.object({ externalId: z.string(), title: z.string().nullish() })),
});
export const ListSolutionsResult = z.object({ viewer: z.object({ solutions: Connection(SolutionNode) }) });

/**
 * A one-use code (valid 5 minutes) that lets the end user open Tray's embedded config wizard or
 * auth dialog without a Tray login. Master token. The code is a secret: the client registers it
 * for redaction before returning it.
 */
export const GENERATE_AUTHORIZATION_CODE = /* GraphQL */ `
  mutation GenerateAuthorizationCode($userId: ID!) { generateAuthorizationCode(input: { userId: $userId }) { authorizationCode } }`;
export const GenerateAuthorizationCodeResult = z.object({
  generateAuthorizationCode: z.object({ authorizationCode: z.string().min(1) }),
});

/** Points the instance's slots at other auths (a credential rotation), or disables it (`enabled: false`, offboarding). */
export const UPDATE_SOLUTION_INSTANCE_VALUES = /* GraphQL */ `
  mutation UpdateSolutionInstanceValues($solutionInstanceId: ID!, $enabled: Boolean, $authValues: [AuthValue!]) {
    updateSolutionInstance(input: { solutionInstanceId: $solutionInstanceId, enabled: $enabled, authValues: $authValues }) { solutionInstance { id enabled } }
  }`;

/** Moves an instance to its solution's newest version, with values rendered from the current plan. */
export const UPGRADE_SOLUTION_INSTANCE = /* GraphQL */ `
  mutation UpgradeSolutionInstance($solutionInstanceId: ID!, $authValues: [AuthValue!], $configValues: [ConfigValue!]) {
    upgradeSolutionInstance(input: { solutionInstanceId: $solutionInstanceId, authValues: $authValues, configValues: $configValues }) {
      solutionInstance { id enabled solutionVersionFlags { hasNewerVersion requiresUserInputToUpdateVersion requiresSystemInputToUpdateVersion } }
    }
  }`;
export const UpgradeSolutionInstanceResult = z.object({
  upgradeSolutionInstance: z.object({ solutionInstance: SolutionInstanceSummary }),
});

export const REMOVE_SOLUTION_INSTANCE = /* GraphQL */ `
  mutation RemoveSolutionInstance($solutionInstanceId: ID!) { removeSolutionInstance(input: { solutionInstanceId: $solutionInstanceId }) { clientMutationId } }`;
export const RemoveSolutionInstanceResult = z.object({ removeSolutionInstance: z.object({ clientMutationId: z.string().nullish() }) });

export const REMOVE_AUTHENTICATION = /* GraphQL */ `
  mutation RemoveAuthentication($authenticationId: ID!) { removeAuthentication(input: { authenticationId: $authenticationId }) { clientMutationId } }`;
export const RemoveAuthenticationResult = z.object({ removeAuthentication: z.object({ clientMutationId: z.string().nullish() }) });

/** Also disables and deletes the user's instances (Tray's reference); auths are not documented to go with it. */
export const REMOVE_EXTERNAL_USER = /* GraphQL */ `
  mutation RemoveExternalUser($userId: ID!) { removeExternalUser(input: { userId: $userId }) { clientMutationId } }`;
export const RemoveExternalUserResult = z.object({ removeExternalUser: z.object({ clientMutationId: z.string().nullish() }) });

export type TrayUser = z.infer<typeof TrayUserNode>;
export type TrayAuthentication = z.infer<typeof AuthenticationNode>;
export type TraySolutionInstance = z.infer<typeof SolutionInstanceNode>;
export type TraySolution = z.infer<typeof SolutionNode>;

/**
 * What the client needs to know of one Tray operation. `token` follows the reference's table
 * (`either`: the master token filters by owner, a user token sees that user's own).
 * `resendSafe` is false for creates: Tray has no idempotency keys, so a create that may have
 * run is not re-sent blindly; the workflow looks it up first. `step` is where a failure is
 * reported, in the ledger's progress vocabulary.
 */
export interface TrayOperation<S extends z.ZodType = z.ZodType> {
  /** The GraphQL field: what errors and metrics name. */
  readonly name: string;
  readonly document: string;
  readonly result: S;
  readonly token: 'master' | 'user' | 'either';
  readonly resendSafe: boolean;
  readonly step: Step;
}

const operation = <S extends z.ZodType>(descriptor: TrayOperation<S>): TrayOperation<S> => descriptor;

export const TRAY_OPERATIONS = {
  createExternalUser: operation({
    name: 'createExternalUser',
    document: CREATE_EXTERNAL_USER,
    result: CreateExternalUserResult,
    token: 'master',
    resendSafe: false,
    step: 'createExternalUser',
  }),
  authorize: operation({
    name: 'authorize',
    document: AUTHORIZE,
    result: AuthorizeResult,
    token: 'master',
    resendSafe: true,
    step: 'authorize',
  }),
  generateAuthorizationCode: operation({
    name: 'generateAuthorizationCode',
    document: GENERATE_AUTHORIZATION_CODE,
    result: GenerateAuthorizationCodeResult,
    token: 'master',
    resendSafe: true,
    step: 'lookup',
  }),
  findUsers: operation({ name: 'users', document: FIND_USERS, result: FindUsersResult, token: 'master', resendSafe: true, step: 'lookup' }),
  createUserAuthentication: operation({
    name: 'createUserAuthentication',
    document: CREATE_USER_AUTHENTICATION,
    result: CreateUserAuthenticationResult,
    token: 'user',
    resendSafe: false,
    step: 'createUserAuthentication',
  }),
  listAuthentications: operation({
    name: 'authentications',
    document: LIST_AUTHENTICATIONS,
    result: ListAuthenticationsResult,
    token: 'user',
    resendSafe: true,
    step: 'lookup',
  }),
  createSolutionInstance: operation({
    name: 'createSolutionInstance',
    document: CREATE_SOLUTION_INSTANCE,
    result: CreateSolutionInstanceResult,
    token: 'user',
    resendSafe: false,
    step: 'createSolutionInstance',
  }),
  /** Setting the same values and `enabled` again changes nothing: safe to re-send. */
  enableSolutionInstance: operation({
    name: 'updateSolutionInstance',
    document: UPDATE_SOLUTION_INSTANCE,
    result: UpdateSolutionInstanceResult,
    token: 'user',
    resendSafe: true,
    step: 'enableSolutionInstance',
  }),
  listSolutionInstances: operation({
    name: 'solutionInstances',
    document: LIST_SOLUTION_INSTANCES,
    result: ListSolutionInstancesResult,
    token: 'either',
    resendSafe: true,
    step: 'lookup',
  }),
  /** Same values again change nothing: safe to re-send. */
  updateSolutionInstanceValues: operation({
    name: 'updateSolutionInstance',
    document: UPDATE_SOLUTION_INSTANCE_VALUES,
    result: UpdateSolutionInstanceResult,
    token: 'user',
    resendSafe: true,
    step: 'lifecycle',
  }),
  upgradeSolutionInstance: operation({
    name: 'upgradeSolutionInstance',
    document: UPGRADE_SOLUTION_INSTANCE,
    result: UpgradeSolutionInstanceResult,
    token: 'user',
    resendSafe: true,
    step: 'lifecycle',
  }),
  /** Removing what is gone answers "not found", which the lifecycle treats as done: safe to re-send. */
  removeSolutionInstance: operation({
    name: 'removeSolutionInstance',
    document: REMOVE_SOLUTION_INSTANCE,
    result: RemoveSolutionInstanceResult,
    token: 'user',
    resendSafe: true,
    step: 'lifecycle',
  }),
  /** Tray's docs disagree on the token (master in the token table, user in its Postman collection); the owner's token is allowed by both readings of the stand-in. */
  removeAuthentication: operation({
    name: 'removeAuthentication',
    document: REMOVE_AUTHENTICATION,
    result: RemoveAuthenticationResult,
    token: 'user',
    resendSafe: true,
    step: 'lifecycle',
  }),
  removeExternalUser: operation({
    name: 'removeExternalUser',
    document: REMOVE_EXTERNAL_USER,
    result: RemoveExternalUserResult,
    token: 'master',
    resendSafe: true,
    step: 'lifecycle',
  }),
  listSolutions: operation({
    name: 'solutions',
    document: LIST_SOLUTIONS,
    result: ListSolutionsResult,
    token: 'master',
    resendSafe: true,
    step: 'lookup',
  }),
} as const;
