import { readFileSync } from 'node:fs';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import * as operations from '../shared/tray/operations.js';

/**
 * Every GraphQL document the project sends lives in shared/tray/operations.ts (the worker, the
 * CLI's preflight and status, and the lifecycle commands all call them through TrayClient). Each
 * is validated against Tray's published schema, vendored in shared/tray/tray-schema.graphql: a
 * document Tray would reject fails here, whatever the stand-in accepts.
 */
const schemaText = readFileSync(new URL('../shared/tray/tray-schema.graphql', import.meta.url), 'utf8');
const schema = buildSchema(schemaText);

const documents: [string, string][] = Object.entries(operations as Record<string, unknown>).flatMap(([name, value]) =>
  typeof value === 'string' && /^\s*(query|mutation)\b/.test(value) ? [[name, value] as [string, string]] : [],
);

describe("Tray's published schema", () => {
  it('is vendored with its provenance', () => {
    expect(schemaText).toMatch(/Provenance: Tray's own SDL/);
    expect(schemaText).toMatch(/trayio\/mock-inspect/);
  });

  it('finds every document the project sends', () => {
    const names = documents.map(([name]) => name);
    for (const expected of [
      'CREATE_EXTERNAL_USER',
      'AUTHORIZE',
      'FIND_USERS',
      'CREATE_USER_AUTHENTICATION',
      'LIST_AUTHENTICATIONS',
      'CREATE_SOLUTION_INSTANCE',
      'UPDATE_SOLUTION_INSTANCE',
      'LIST_SOLUTION_INSTANCES',
      'LIST_SOLUTIONS',
    ]) {
      expect(names).toContain(expected);
    }
  });

  it.each(documents)('%s validates against it', (_name, document) => {
    const errors = validate(schema, parse(document)).map((e) => e.message);
    expect(errors).toEqual([]);
  });

  it('rejects what Tray rejects (the check bites)', () => {
    const idCriteria = `query ($solutionId: ID) { viewer { solutionInstances(criteria: { solutionId: $solutionId }) { totalCount } } }`;
    expect(
      validate(schema, parse(idCriteria))
        .map((e) => e.message)
        .join(),
    ).toMatch(/Variable "\$solutionId" of type "ID" used in position expecting type "String"/);
    const pagedAuths = `query { viewer { authentications(first: 10) { edges { node { id } cursor } } } }`;
    const messages = validate(schema, parse(pagedAuths))
      .map((e) => e.message)
      .join('\n');
    expect(messages).toMatch(/Unknown argument "first"/);
    expect(messages).toMatch(/Cannot query field "cursor" on type "AuthenticationEdge"/);
  });
});
