import { InvalidArgumentError } from 'commander';
import { ImportError } from '../../shared/errors.js';
import { type ImportPlan, loadPlanFile } from '../../shared/plan.js';
import { UsageError } from './errors.js';

/**
 * Flag values, for the CLI and `npm start`: commander argument parsers (a bad value is commander's
 * usage error, printed with the flag) and the checks made after parsing (a UsageError naming the flag).
 */

/** Any finite number. */
export const number = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
  return n;
};

/** A whole number from `min` to `max`; `what` names the flag in the message. */
export const integer =
  (what: string, min: number, max: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
    return n;
  };

/** A share from 0 to 1. */
export const fraction = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError('must be a number from 0 to 1, e.g. 0.1 for 10%.');
  return n;
};

/** Repeatable, comma-separated values. Empty ones are kept so that a command can refuse `--user ""` instead of reading it as no filter. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim())];

export function positiveNumber(
  value: number | undefined,
  flag: string,
  options: { max?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  if (
    !Number.isFinite(value) ||
    value <= 0 ||
    (options.integer && !Number.isInteger(value)) ||
    (options.max !== undefined && value > options.max)
  ) {
    throw new UsageError(
      `${flag} must be a positive ${options.integer ? 'integer' : 'number'}${options.max !== undefined ? ` up to ${options.max}` : ''}, not ${value}`,
    );
  }
  return value;
}

/** Reads and validates a plan file; a bad plan is a usage error, prefixed with `flag` and the path when the flag was given. */
export function readPlanFile(path: string, flag?: string): ImportPlan {
  try {
    return loadPlanFile(path);
  } catch (e) {
    if (e instanceof ImportError) throw new UsageError(flag ? `${flag} ${path}: ${e.message}` : e.message);
    throw e;
  }
}

/** The plan a command needs (`--plan FILE`): required, then read as readPlanFile does. */
export function loadPlan(path: string | undefined, flag = '--plan'): ImportPlan {
  if (!path) throw new UsageError(`${flag} FILE is required: the import plan (JSON) the worker uses`);
  return readPlanFile(path, flag);
}
