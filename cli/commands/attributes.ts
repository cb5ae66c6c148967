import { parseAttributeList } from '../../shared/message.js';
import { requiredAttributes } from '../../shared/plan.js';
import { CliError } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';

/**
 * Which user attributes a message carries: exactly what the plan needs (the same selection the
 * trigger makes through MESSAGE_ATTRIBUTES), so no other attribute leaves Cognito.
 */
export interface AttributeOptions {
  plan?: string;
  attributes?: string;
}

export function attributeNamesFor(options: AttributeOptions, command: string): string[] {
  if (options.plan && options.attributes) throw new CliError(`${command}: pass --plan FILE or --attributes LIST, not both`);
  if (options.plan) return requiredAttributes(loadPlan(options.plan));
  if (options.attributes) {
    const names = parseAttributeList(options.attributes);
    if (names.length === 0) throw new CliError('--attributes is empty; e.g. --attributes email,name,custom:tenant_id');
    return names;
  }
  throw new CliError(
    `${command} needs to know which user attributes the messages carry: pass --plan FILE (the worker's import plan) or --attributes email,name,custom:...`,
  );
}
