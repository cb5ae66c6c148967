import { type Options, Presets, SingleBar } from 'cli-progress';
import type { Io } from './output.js';

/**
 * Progress for long runs, on stderr/a terminal only, so that stdout stays the result: one bar
 * style for the CLI and `npm start` (cli-progress), and plain throttled lines where no bar can be
 * drawn (CI, a pipe, --verbose).
 */

/** A cli-progress bar in the toolkit's style; `options` adds to it (format payload, fps, width). */
export function terminalBar(stream: NodeJS.WritableStream, format: string, options: Partial<Options> = {}): SingleBar {
  return new SingleBar({ stream, format, hideCursor: true, ...options }, Presets.shades_classic);
}

/** Progress as a counter (users listed, messages moved). */
export interface Progress {
  increment(by?: number): void;
  setTotal(total: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { increment: () => undefined, setTotal: () => undefined, stop: () => undefined };

/** A progress bar on stderr when stderr is a terminal; otherwise nothing at all. */
export function progress(io: Io, label: string, total?: number): Progress {
  if (!io.stderrIsTTY || !io.progressStream) return NO_PROGRESS;
  const known = total !== undefined && total > 0;
  const bar = terminalBar(
    io.progressStream,
    known ? `${label} [{bar}] {percentage}% {value}/{total} eta {eta_formatted}` : `${label} {value}`,
    {
      clearOnComplete: false,
      etaBuffer: 50,
    },
  );
  bar.start(known ? total : 0, 0);
  let value = 0;
  return {
    increment: (by = 1) => {
      value += by;
      // An estimate (EstimatedNumberOfUsers) can be exceeded: grow the total rather than overflow.
      if (known && value > bar.getTotal()) bar.setTotal(value);
      bar.increment(by);
    },
    setTotal: (n) => bar.setTotal(n),
    stop: () => bar.stop(),
  };
}

/** Progress as lines: `update` writes a line when the text changed and `intervalMs` passed since the last one; `done` always writes. */
export interface LineProgress {
  update(text: string): void;
  done(text: string): void;
}

export function lineProgress(log: (line: string) => void, options: { intervalMs?: number; now?: () => number } = {}): LineProgress {
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 2_000;
  const started = now();
  const seconds = () => ((now() - started) / 1000).toFixed(1);
  let last = '';
  let lastAt = Number.NEGATIVE_INFINITY;
  return {
    update: (text) => {
      if (text === last || now() - lastAt < interval) return;
      last = text;
      lastAt = now();
      log(`progress ${seconds()}s: ${text}`);
    },
    done: (text) => log(`progress ${seconds()}s: ${text} (done)`),
  };
}
