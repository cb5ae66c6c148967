/**
 * SDL of the stand-in, limited to what /work/shared/reference/tray-embedded-api.md lists.
 * It is deliberately no richer than the reference: a field that only exists here would let
 * client code pass locally and fail against the real Tray.
 *
 * `Json` is Tray's JSON-*encoded string* scalar. buildSchema gives custom scalars identity
 * coercion, so the resolvers check that a Json argument really is a string and parses
 * (that is where Tray's rule "data: JSON.stringify({...})" bites clients).
 */
export const traySchemaSdl = /* GraphQL */ `
scalar Json

type Query {
  viewer: Viewer!
  users(criteria: UserCriteria, first: Int, after: String): UserConnection!
}

type Mutation {
  createExternalUser(input: CreateExternalUserInput!): CreateExternalUserPayload!
  authorize(input: AuthorizeInput!): AuthorizePayload!
  createUserAuthentication(input: CreateUserAuthenticationInput!): CreateUserAuthenticationPayload!
  createSolutionInstance(input: CreateSolutionInstanceInput!): CreateSolutionInstancePayload!
  updateSolutionInstance(input: UpdateSolutionInstanceInput!): UpdateSolutionInstancePayload!
  removeSolutionInstance(input: RemoveSolutionInstanceInput!): RemovePayload!
  removeExternalUser(input: RemoveExternalUserInput!): RemovePayload!
  removeAuthentication(input: RemoveAuthenticationInput!): RemovePayload!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type Viewer {
  solutions(criteria: SolutionCriteria, first: Int, after: String): SolutionConnection!
  solutionInstances(criteria: SolutionInstanceCriteria, first: Int, after: String): SolutionInstanceConnection!
  authentications(first: Int, after: String): AuthenticationConnection!
}

# --- users ---
input UserCriteria {
  externalUserId: String
  name: String
  userId: ID
}
type User {
  id: ID!
  name: String!
  externalUserId: String!
}
type UserEdge { node: User! cursor: String! }
type UserConnection { edges: [UserEdge!]! pageInfo: PageInfo! }

# --- solutions ---
input SolutionCriteria { tags: [String!] }
type AuthSlot { externalId: String! title: String! }
type ConfigSlot { externalId: String! title: String! defaultValue: Json }
type Solution {
  id: ID!
  title: String!
  tags: [String!]!
  authSlots: [AuthSlot!]!
  configSlots: [ConfigSlot!]!
}
type SolutionEdge { node: Solution! cursor: String! }
type SolutionConnection { edges: [SolutionEdge!]! pageInfo: PageInfo! }

# --- solution instances ---
input SolutionInstanceCriteria {
  id: ID
  name: String
  owner: ID
  solutionId: ID
}
type InstanceAuthValue { externalId: String! authId: String! }
type InstanceConfigValue { externalId: String! value: Json }
type SolutionInstance {
  id: ID!
  name: String!
  enabled: Boolean!
  created: String!
  owner: ID!
  solution: Solution!
  authValues: [InstanceAuthValue!]!
  configValues: [InstanceConfigValue!]!
}
type SolutionInstanceEdge { node: SolutionInstance! cursor: String! }
type SolutionInstanceConnection { totalCount: Int! edges: [SolutionInstanceEdge!]! pageInfo: PageInfo! }

# --- authentications ---
type Service { id: ID! name: String! version: String! title: String! }
type ServiceEnvironment { id: ID! title: String! }
type Authentication {
  id: ID!
  name: String!
  service: Service!
  serviceEnvironment: ServiceEnvironment!
}
type AuthenticationEdge { node: Authentication! cursor: String! }
type AuthenticationConnection { edges: [AuthenticationEdge!]! pageInfo: PageInfo! }

# --- mutation inputs / payloads (clientMutationId is only echoed: Tray has no idempotency keys) ---
input CreateExternalUserInput { name: String! externalUserId: String! isTestUser: Boolean clientMutationId: String }
type CreateExternalUserPayload { userId: ID! clientMutationId: String }

input AuthorizeInput { userId: ID! clientMutationId: String }
type AuthorizePayload { accessToken: String! clientMutationId: String }

input CreateUserAuthenticationInput {
  name: String!
  serviceId: String!
  serviceEnvironmentId: String!
  data: Json!
  formData: Json
  scopes: [String!]
  hidden: Boolean
  clientMutationId: String
}
type CreateUserAuthenticationPayload { authenticationId: ID! clientMutationId: String }

input AuthValue { externalId: String! authId: String! }
input ConfigValue { externalId: String! value: Json }

input CreateSolutionInstanceInput {
  solutionId: ID!
  instanceName: String!
  authValues: [AuthValue!]
  configValues: [ConfigValue!]
  clientMutationId: String
}
type CreateSolutionInstancePayload { solutionInstance: SolutionInstance! clientMutationId: String }

input UpdateSolutionInstanceInput {
  solutionInstanceId: ID!
  instanceName: String
  enabled: Boolean
  authValues: [AuthValue!]
  configValues: [ConfigValue!]
  errorOnEnablingWithMissingValues: Boolean
  clientMutationId: String
}
type UpdateSolutionInstancePayload { solutionInstance: SolutionInstance! clientMutationId: String }

input RemoveSolutionInstanceInput { solutionInstanceId: ID! clientMutationId: String }
input RemoveExternalUserInput { userId: ID! clientMutationId: String }
input RemoveAuthenticationInput { authenticationId: ID! clientMutationId: String }
type RemovePayload { clientMutationId: String }
`;
