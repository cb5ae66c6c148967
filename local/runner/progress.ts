import cliProgress from 'cli-progress';
import type { RunOutput } from './types.js';

/**
 * Progress while the pipeline runs: a cli-progress bar on a terminal, otherwise (CI, a pipe,
 * tests, --verbose) a plain line whenever the counts changed, at most every `intervalMs`.
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
  const now = options.now ?? Date.now;
  const started = now();
  const seconds = () => ((now() - started) / 1000).toFixed(1);

  if (options.bar && output.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: output.tty,
        format: 'importing |{bar}| {value}/{total} enabled | signed up {signedUp}/{toSignUp} | retried {retried} | dead-lettered {deadLettered} | {duration}s',
        hideCursor: true,
        barsize: 24,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (c: ProgressCounts) => ({ signedUp: c.signedUp, toSignUp: c.toSignUp, retried: c.retried, deadLettered: c.deadLettered });
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

  const interval = options.intervalMs ?? 2_000;
  let last = '';
  let lastAt = Number.NEGATIVE_INFINITY;
  return {
    update: (c) => {
      const text = describeCounts(c);
      if (text === last || now() - lastAt < interval) return;
      last = text;
      lastAt = now();
      output.log(`progress ${seconds()}s: ${text}`);
    },
    stop: (c) => {
      output.log(`progress ${seconds()}s: ${describeCounts(c)} (done)`);
    },
  };
}
