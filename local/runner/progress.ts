import { lineProgress, terminalBar } from '../../cli/toolkit/progress.js';
import type { RunOutput } from './types.js';

/**
 * Progress while the pipeline runs, with the CLI's toolkit: a bar on a terminal, otherwise (CI, a
 * pipe, tests, --verbose) a plain line whenever the counts changed, at most every `intervalMs`.
 */
export interface ProgressCounts {
  signedUp: number;
  toSignUp: number;
  enabled: number;
  toEnable: number;
  /** Tray calls retried inside an invocation (faults the stand-in injected) plus deliveries handed back to SQS. */
  retried: number;
  deadLettered: number;
}

export interface Progress {
  update(counts: ProgressCounts): void;
  stop(counts: ProgressCounts): void;
}

export function describeCounts(c: ProgressCounts): string {
  return `signed up ${c.signedUp}/${c.toSignUp}, enabled ${c.enabled}/${c.toEnable}, retried ${c.retried}, dead-lettered ${c.deadLettered}`;
}

export function createProgress(output: RunOutput, options: { bar: boolean; intervalMs?: number; now?: () => number }): Progress {
  if (options.bar && output.tty) {
    const bar = terminalBar(
      output.tty,
      'importing |{bar}| {value}/{total} enabled | signed up {signedUp}/{toSignUp} | retried {retried} | dead-lettered {deadLettered} | {duration}s',
      { barsize: 24, fps: 10 },
    );
    const payload = (c: ProgressCounts) => ({
      signedUp: c.signedUp,
      toSignUp: c.toSignUp,
      retried: c.retried,
      deadLettered: c.deadLettered,
    });
    let started = false;
    return {
      update: (c) => {
        if (!started) {
          bar.start(c.toEnable, c.enabled, payload(c));
          started = true;
        } else bar.update(c.enabled, payload(c));
      },
      stop: (c) => {
        if (!started) bar.start(c.toEnable, c.enabled, payload(c));
        bar.update(c.enabled, payload(c));
        bar.stop();
      },
    };
  }

  const lines = lineProgress((line) => output.log(line), { intervalMs: options.intervalMs, now: options.now });
  return {
    update: (c) => lines.update(describeCounts(c)),
    stop: (c) => lines.done(describeCounts(c)),
  };
}
