import { ImportError } from '../errors.js';
import type { LifecycleDeps, LifecycleOutcome } from './index.js';
import type { LifecycleMessage } from './message.js';

/** Placeholder until the rotate workflow lands (issue 13). */
export function rotateUser(message: LifecycleMessage, _deps: LifecycleDeps): Promise<LifecycleOutcome> {
  return Promise.reject(new ImportError('PLAN_INVALID', 'plan', `${message.kind} is not implemented yet`));
}
