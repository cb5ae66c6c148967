import type * as z from 'zod';

/**
 * Turns zod issues into one line per problem: the JSON path (`$.auths[0].serviceId`) and what to
 * write instead. Zod's default text ("Invalid input") names neither, and people fix plans and
 * messages from this text alone.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => `${jsonPath(issue.path)}: ${describeIssue(issue)}`).join('; ');
}

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling`;
    case 'invalid_type': {
      // Schemas give hints ("the serviceId from Tray's generator"); zod's own text starts with "Invalid input".
      const hint = issue.message.startsWith('Invalid input') ? undefined : issue.message;
      if (issue.input === undefined) return `required: add ${hint ?? article(issue.expected)}`;
      return `must be ${article(issue.expected)}, not ${typeName(issue.input)}${hint ? ` (${hint})` : ''}`;
    }
    default:
      return issue.message;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
