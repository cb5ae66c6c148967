/**
 * Cognito subs are UUIDs, and the worker refuses anything else. Tests still want readable names:
 * `readableSub('d2')` spells the name in the UUID's hex digits (order-preserving, so sorted lists
 * compare as before), and `nameOfSub` reads it back.
 */
export function readableSub(name: string): string {
  const hex = Buffer.from(name).toString('hex').padEnd(32, '0');
  if (hex.length > 32) throw new Error(`readableSub: "${name}" is longer than 16 bytes`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function nameOfSub(sub: string | undefined): string | undefined {
  return sub === undefined ? undefined : Buffer.from(sub.replace(/-/g, ''), 'hex').toString('utf8').replace(/\0+$/, '');
}
