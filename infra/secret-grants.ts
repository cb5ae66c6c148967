import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { type ImportPlan, referencedSecrets } from '../shared/plan.js';
import { masterTokenCoverageProblem, PER_USER_TEMPLATE_RULE, perUserSecretPrefix } from '../shared/security-policy.js';
import { DeployConfigError } from './config.js';

/**
 * The secrets the worker may read, as IAM resources, and nothing more:
 * - a complete ARN (from the config or the plan; it ends in "-" and the six random characters
 *   Secrets Manager appends) is used as is: the exact secret;
 * - a partial ARN (the plan's `arn:…:secret:<name>`, without that suffix: GetSecretValue accepts
 *   it, but IAM compares the policy with the secret's real, complete ARN) becomes `<arn>-??????`,
 *   for the same reason as a name;
 * - a secret name becomes `arn:…:secret:<name>-??????`: Secrets Manager appends "-" and six
 *   random characters to every secret's ARN, and `?` matches exactly one character, so this
 *   matches that one secret (and not "<name>-suffix-longer" nor "<name>2");
 * - a per-user template (`"tray-import/users/{{sub}}"`) becomes `arn:…:secret:<prefix>*`, the
 *   fixed text before `{{sub}}`; the prefix must end in "/" and must not cover the master
 *   token's secret (shared/security-policy.ts).
 */
export interface SecretResources {
  /** Exact secrets (ARNs, or name-?????? patterns). */
  exact: string[];
  /** Prefix grants for per-user secrets: wildcards a reviewer must see acknowledged. */
  prefixes: string[];
}

const NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
/** A complete secret ARN ends in "-" and six random alphanumerics; without them it is a partial ARN. */
const COMPLETE_ARN_SUFFIX = /-[A-Za-z0-9]{6}$/;

export function secretResources(
  scope: IConstruct,
  plan: ImportPlan,
  masterToken: { name?: string | undefined; arn?: string | undefined },
): SecretResources {
  const stack = Stack.of(scope);
  const secretArn = (resourceName: string) =>
    stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });

  const { ids } = referencedSecrets(plan);
  const exact = new Set<string>();
  if (masterToken.arn) exact.add(masterToken.arn);
  else if (masterToken.name) exact.add(secretArn(`${masterToken.name}-??????`));
  for (const id of ids) {
    if (ARN.test(id)) exact.add(COMPLETE_ARN_SUFFIX.test(id) ? id : `${id}-??????`);
    else if (NAME.test(id)) exact.add(secretArn(`${id}-??????`));
    else
      throw new DeployConfigError(`import plan: secretId "${id}" is neither a secret name (letters, digits and /_+=.@-) nor a secret ARN`);
  }

  // Templates are read from the plan directly (not from referencedSecrets' prefixes) so that a
  // plan that skipped validation cannot widen the grant: only prefixes passing the rule get one,
  // and so only they get a cdk-nag acknowledgement.
  const templates = plan.auths.flatMap((auth) =>
    Object.values(auth.data).flatMap((source) => (source.secret?.secretIdTemplate ? [source.secret.secretIdTemplate] : [])),
  );
  const prefixes = new Set<string>();
  for (const template of new Set(templates)) {
    const prefix = perUserSecretPrefix(template);
    if (prefix === undefined) {
      throw new DeployConfigError(
        template.startsWith('{{')
          ? `import plan: a secretIdTemplate must start with a fixed prefix such as "tray-import/users/" before its first {{placeholder}} (one starting with a placeholder would need read access to every secret in the account)`
          : `import plan: secretIdTemplate "${template}" ${PER_USER_TEMPLATE_RULE}`,
      );
    }
    const masterTokenId = masterToken.arn ?? masterToken.name;
    const coverage = masterTokenId === undefined ? undefined : masterTokenCoverageProblem([prefix], masterTokenId);
    if (coverage) throw new DeployConfigError(`import plan: ${coverage}`);
    prefixes.add(prefix.startsWith('arn:') ? `${prefix}*` : secretArn(`${prefix}*`));
  }
  return { exact: [...exact], prefixes: [...prefixes] };
}

/**
 * The string cdk-nag 3 shows for a resource in an IAM5 finding (`Resource::<this>`), to acknowledge
 * exactly that finding. Mirrors cdk-nag's flattening of Fn::Join / Ref / Fn::GetAtt.
 */
export function nagResourceString(scope: IConstruct, value: string): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    const obj = node as Record<string, unknown>;
    if (Array.isArray(obj['Fn::Join'])) {
      const [delimiter, items] = obj['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if (obj['Fn::Sub'] !== undefined) return visit(obj['Fn::Sub']);
    if (Array.isArray(obj['Fn::GetAtt'])) {
      const [resource, attribute] = obj['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if (obj.Ref !== undefined) return `<${visit(obj.Ref)}>`;
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}
