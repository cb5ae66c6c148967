/**
 * `{{attribute}}` templates used by the plan (instance name, auth name, per-user secret ids).
 * Only attribute references are supported: no expressions, so a template cannot do anything
 * but substitute values that the queue message carries.
 */
const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

/** The attribute names a template refers to, in order of appearance. */
export function templateAttributes(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}

/** Text that is not a placeholder but still contains braces is almost always a typo. */
export function templateSyntaxProblem(template: string): string | undefined {
  const rest = template.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) {
    return 'has unbalanced "{{" / "}}"; write placeholders as {{attribute}}, e.g. {{email}} or {{custom:tenant}}';
  }
  return undefined;
}

/**
 * Substitutes attributes. A missing attribute is returned as such rather than rendered as an
 * empty string: an empty user name or secret id would be a silent bug.
 */
export function renderTemplate(
  template: string,
  attributes: Readonly<Record<string, string>>,
): { ok: true; value: string } | { ok: false; missing: string[] } {
  // Own properties only: on a plain object "constructor" or "toString" would find Object's
  // methods and render their source text instead of being reported missing.
  const lookup = (name: string): string | undefined =>
    Object.hasOwn(attributes, name) && typeof attributes[name] === 'string' ? attributes[name] : undefined;
  const missing = templateAttributes(template).filter((name) => lookup(name) === undefined);
  if (missing.length > 0) return { ok: false, missing };
  return { ok: true, value: template.replace(PLACEHOLDER, (_m, name: string) => lookup(name) as string) };
}
