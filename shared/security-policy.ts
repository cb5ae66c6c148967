/**
 * Rules that keep one user's import from reaching what belongs to someone else, shared by the
 * plan validator, the worker's cold start and `cdk synth` so that all three agree. No imports:
 * safe to bundle anywhere.
 */

/**
 * A per-user secret template is a fixed prefix ending in "/" followed by exactly one `{{sub}}`:
 * the worker renders `<prefix><sub>` and IAM grants `<prefix>*`. The "/" keeps the grant to one
 * folder-like namespace ("t{{sub}}" would grant every secret whose name starts with "t"), and a
 * `sub` is a UUID (checked on every message), so a rendered id cannot leave the prefix.
 * The prefix is a secret name prefix, or a secret ARN up to such a prefix.
 */
const NAME_PREFIX = '[A-Za-z0-9_+=.@-][A-Za-z0-9/_+=.@-]*/';
const ARN_START = 'arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\\d{12}:secret:';
const PER_USER_TEMPLATE = new RegExp(`^((?:${ARN_START})?${NAME_PREFIX})\\{\\{sub\\}\\}$`);

export const PER_USER_TEMPLATE_RULE =
  'must be a fixed prefix ending in "/" followed by exactly one {{sub}} at the end, e.g. "tray-import/users/{{sub}}" (a prefix without "/" such as "t{{sub}}" would grant read access to every secret starting with "t")';

/** The fixed prefix of a valid per-user template, or undefined when the template breaks the rule. */
export function perUserSecretPrefix(template: string): string | undefined {
  return PER_USER_TEMPLATE.exec(template)?.[1];
}

/** The secret name in a name or ARN (an ARN's random "-xxxxxx" suffix, if any, is kept: harmless for prefix checks). */
function secretName(idOrArn: string): string {
  const at = idOrArn.indexOf(':secret:');
  return idOrArn.startsWith('arn:') && at >= 0 ? idOrArn.slice(at + ':secret:'.length) : idOrArn;
}

/**
 * Whether a grant on `<prefix>*` would cover the secret `secretId` (a name or an ARN). Compared by
 * name only, ignoring account and region: refusing a look-alike in another account is harmless.
 */
export function prefixCoversSecret(prefix: string, secretId: string): boolean {
  return secretName(secretId).startsWith(secretName(prefix));
}

/**
 * A problem with per-user templates and the master token's secret, or undefined. The master
 * token is the partner's key to every Tray user: a per-user prefix covering its name would let
 * the worker's per-user grant (and a rendered secret id) reach it.
 */
export function masterTokenCoverageProblem(templatePrefixes: readonly string[], masterTokenSecretId: string): string | undefined {
  const covering = templatePrefixes.find((p) => prefixCoversSecret(p, masterTokenSecretId));
  if (covering === undefined) return undefined;
  return `the per-user secretIdTemplate prefix "${covering}" covers the master token's secret "${masterTokenSecretId}": keep per-user secrets under their own prefix (e.g. "tray-import/users/") and the master token outside it`;
}

/** Loopback hosts: the local run and the tests talk plain HTTP to stand-ins there, nothing else may. */
function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Why `url` may not be used as Tray's GraphQL endpoint, or undefined: the master token and the
 * users' credentials travel in every request, so only https is allowed, except to loopback hosts.
 * `field` names the setting in the message.
 */
export function trayUrlProblem(url: string, field: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${field} is not a URL; use Tray's endpoint such as "https://tray.io/graphql"`;
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:' && isLoopback(parsed.hostname)) return undefined;
  return `${field} must use https (the master token and credentials are sent to it); plain http is only allowed to loopback hosts (127.0.0.1, localhost, [::1]) for local stand-ins: use "https://${parsed.host}${parsed.pathname}" or Tray's endpoint such as "https://tray.io/graphql"`;
}
