import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as z from 'zod';
import { formatIssues } from '../shared/validation.js';
import { CliError } from './toolkit/errors.js';

/**
 * Where a backfill got to, so that a rerun after an interruption (Ctrl-C, lost connection, a
 * queue that stopped accepting) continues instead of starting over:
 * - `paginationToken`: the ListUsers token returned by the last page whose users were all
 *   enqueued: the rerun resumes with the page after it;
 * - `enqueued`: subs enqueued from the pages after that token: the rerun skips them.
 * When a page is fully enqueued the token moves on and `enqueued` is emptied: those users will
 * not be listed again, and the file stays small on a pool of millions. After a page with users
 * that could not be enqueued the token stops moving for the rest of the run, so the rerun lists
 * those pages again and retries exactly the users not yet enqueued.
 *
 * Written after every batch (write to a temporary file, then rename: never half a file).
 */
export const BackfillStateSchema = z.object({
  version: z.literal(1),
  userPoolId: z.string(),
  filter: z.string().nullable(),
  paginationToken: z.string().nullable(),
  pagesDone: z.number().int().min(0),
  enqueuedTotal: z.number().int().min(0),
  enqueued: z.array(z.string()),
  completed: z.boolean(),
  startedAt: z.string(),
  updatedAt: z.string(),
});
export type BackfillState = z.infer<typeof BackfillStateSchema>;

export const defaultStatePath = (userPoolId: string): string => `.backfill-state-${userPoolId}.json`;

export function newState(userPoolId: string, filter: string | undefined, now: Date): BackfillState {
  const at = now.toISOString();
  return {
    version: 1,
    userPoolId,
    filter: filter ?? null,
    paginationToken: null,
    pagesDone: 0,
    enqueuedTotal: 0,
    enqueued: [],
    completed: false,
    startedAt: at,
    updatedAt: at,
  };
}

export function readState(path: string): BackfillState | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`--state ${path} is not readable JSON (${(e as Error).message}); fix or delete it, or pass --restart`);
  }
  const parsed = BackfillStateSchema.safeParse(raw);
  if (!parsed.success)
    throw new CliError(`--state ${path} is not a backfill state file: ${formatIssues(parsed.error.issues)}; delete it or pass --restart`);
  return parsed.data;
}

export function writeState(path: string, state: BackfillState, now: Date): void {
  state.updatedAt = now.toISOString();
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
