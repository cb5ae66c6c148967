/**
 * Which token kind each operation needs (the reference's table), checked on the parsed
 * document BEFORE execution: a document mixing a permitted and a forbidden mutation must not
 * half-run, and a wrong token kind is an HTTP 403, not a per-field GraphQL error.
 */
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

export type Need = 'master' | 'user' | 'either';

const ROOT_NEEDS: Record<string, Need> = {
  createExternalUser: 'master',
  authorize: 'master',
  users: 'master',
  removeExternalUser: 'master',
  createUserAuthentication: 'user',
  createSolutionInstance: 'user',
  updateSolutionInstance: 'user',
  removeSolutionInstance: 'user',
  upgradeSolutionInstance: 'user',
  updateExternalUser: 'master',
  generateAuthorizationCode: 'master',
  // The docs disagree (master in the token table, user in Tray's Postman collection): accept both.
  removeAuthentication: 'either',
};

const VIEWER_NEEDS: Record<string, Need> = {
  solutions: 'master',
  solutionInstances: 'either', // master may filter by owner, user sees only its own
  authentications: 'either', // master gets the partner's own auths: none here
  details: 'either',
};

/** Fields of a selection set with fragments flattened (aliases ignored: the field name counts). */
function fieldsOf(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen = new Set<string>()): FieldNode[] {
  const out: FieldNode[] = [];
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) out.push(sel);
    else if (sel.kind === Kind.INLINE_FRAGMENT) out.push(...fieldsOf(sel.selectionSet, fragments, seen));
    else {
      const name = sel.name.value;
      const frag = fragments.get(name);
      if (frag && !seen.has(name)) {
        seen.add(name); // validation rejects cycles anyway; this keeps the walk safe before it runs
        out.push(...fieldsOf(frag.selectionSet, fragments, seen));
      }
    }
  }
  return out;
}

function fragmentsOf(doc: DocumentNode): Map<string, FragmentDefinitionNode> {
  const m = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) m.set(d.name.value, d);
  return m;
}

/** The operation's first root field: how calls are recorded and how fault rules match. */
export function rootFieldName(doc: DocumentNode, op: OperationDefinitionNode): string {
  return fieldsOf(op.selectionSet, fragmentsOf(doc))[0]?.name.value ?? '(empty)';
}

/** Each field of the operation that needs a specific token kind, e.g. { field: 'viewer.solutions', need: 'master' }. */
export function requirements(doc: DocumentNode, op: OperationDefinitionNode): { field: string; need: Need }[] {
  const fragments = fragmentsOf(doc);
  const out: { field: string; need: Need }[] = [];
  for (const f of fieldsOf(op.selectionSet, fragments)) {
    const name = f.name.value;
    if (name === 'viewer' && f.selectionSet) {
      for (const v of fieldsOf(f.selectionSet, fragments)) {
        out.push({ field: `viewer.${v.name.value}`, need: VIEWER_NEEDS[v.name.value] ?? 'either' });
      }
    } else {
      // Introspection (__typename, __schema, __type) works with any valid token.
      out.push({ field: name, need: ROOT_NEEDS[name] ?? 'either' });
    }
  }
  return out;
}

/** The first field the token kind may not call, or undefined when all are allowed. */
export function firstForbidden(
  doc: DocumentNode,
  op: OperationDefinitionNode,
  kind: 'master' | 'user',
): { field: string; need: Need } | undefined {
  return requirements(doc, op).find((r) => r.need !== 'either' && r.need !== kind);
}
