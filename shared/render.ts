import { ImportError } from './errors.js';
import type { QueueMessage } from './message.js';
import type { AuthImport, ImportPlan } from './plan.js';
import { renderTemplate } from './template.js';

/**
 * Everything the plan says about one user, worked out from the message before any Tray call:
 * a user who lacks an attribute the plan needs fails here, permanently, having created nothing.
 * Secret values are not read here (only their ids are resolved): they are read when needed.
 */
export interface RenderedAuth {
  plan: AuthImport;
  name: string;
  /** Credential field → literal value, or where to read it. */
  data: Record<string, { value: unknown } | { secretId: string; field: string }>;
}

export interface RenderedImport {
  externalUserId: string;
  userName: string;
  instanceName: string;
  auths: RenderedAuth[];
  configValues: { externalId: string; value: unknown }[];
}

export function renderImport(plan: ImportPlan, message: QueueMessage): RenderedImport {
  // A null-prototype map: an attribute named "constructor" or "toString" must be missing, not Object's method.
  const attributes: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, message.attributes, {
    sub: message.sub,
    username: message.username,
  });
  const missing = new Set<string>();
  const render = (template: string): string => {
    const result = renderTemplate(template, attributes);
    if (result.ok) return result.value;
    result.missing.forEach((m) => missing.add(m));
    return '';
  };
  const attribute = (name: string): string => {
    const value = Object.hasOwn(attributes, name) ? attributes[name] : undefined;
    if (value === undefined) missing.add(name);
    return value ?? '';
  };

  const rendered: RenderedImport = {
    externalUserId: render(plan.externalUserId),
    userName: render(plan.userName),
    instanceName: render(plan.instanceName),
    auths: plan.auths.map((auth) => ({
      plan: auth,
      name: render(auth.name),
      data: Object.fromEntries<RenderedImport['auths'][number]['data'][string]>(
        Object.entries(auth.data).map(([field, source]) => {
          if (source.literal !== undefined) return [field, { value: source.literal }];
          if (source.attribute !== undefined) return [field, { value: attribute(source.attribute) }];
          const secret = source.secret!;
          const secretId = secret.secretId ?? render(secret.secretIdTemplate!);
          return [field, { secretId, field: secret.field }];
        }),
      ),
    })),
    configValues: plan.configValues.map((config) => ({
      externalId: config.externalId,
      value: config.attribute !== undefined ? attribute(config.attribute) : config.value,
    })),
  };

  if (missing.size > 0) {
    const names = [...missing].sort();
    throw new ImportError(
      'MISSING_ATTRIBUTE',
      'plan',
      `user ${message.username} lacks attribute${names.length > 1 ? 's' : ''} ${names.map((n) => `"${n}"`).join(', ')} that the plan needs: set ${names.length > 1 ? 'them' : 'it'} on the user in Cognito (and check that MESSAGE_ATTRIBUTES carries ${names.length > 1 ? 'them' : 'it'}), then redrive`,
    );
  }
  return rendered;
}
