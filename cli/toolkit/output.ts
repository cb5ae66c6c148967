import { scrub } from '../../shared/redact.js';

/**
 * Where a command writes: results on stdout (one JSON document with --json, readable text
 * otherwise), everything else (warnings, progress) on stderr so that `--json | jq` works.
 * Commands take an Io so tests capture output instead of spawning processes.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Progress bars are drawn only on a terminal. */
  stderrIsTTY: boolean;
  progressStream?: NodeJS.WritableStream;
}

export function processIo(): Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    progressStream: process.stderr,
  };
}

/** An Io that keeps what was written (tests, and callers that post-process). */
export interface BufferIo extends Io {
  stdout: string;
  stderr: string;
  /** stdout parsed as one JSON document. */
  json<T = unknown>(): T;
}

export function bufferIo(): BufferIo {
  const io: BufferIo = {
    stdout: '',
    stderr: '',
    stderrIsTTY: false,
    out: (text) => void (io.stdout += text),
    err: (text) => void (io.stderr += text),
    json: <T>() => JSON.parse(io.stdout) as T,
  };
  return io;
}

/**
 * Writes a command's result: the data as JSON (with `ok`: true when the command succeeded, the
 * same document shape as the `{"ok": false, "error": …}` of a failure), or the text rendering of
 * it. Secrets are scrubbed either way.
 */
export function emit(io: Io, json: boolean | undefined, data: unknown, text: () => string | string[], ok = true): void {
  if (json) {
    const document =
      data !== null && typeof data === 'object' && !Array.isArray(data) ? { ok, ...(data as Record<string, unknown>) } : { ok, data };
    io.out(`${scrub(JSON.stringify(document, null, 2))}\n`);
    return;
  }
  const rendered = text();
  const lines = Array.isArray(rendered) ? rendered.join('\n') : rendered;
  if (lines.length > 0) io.out(`${scrub(lines)}\n`);
}

export function warn(io: Io, text: string): void {
  io.err(`warning: ${scrub(text)}\n`);
}

export function note(io: Io, text: string): void {
  io.err(`${scrub(text)}\n`);
}

export type Column<T> = [header: string, value: (row: T) => unknown];

/** A plain left-aligned text table; cells are single-line and cut at `maxWidth`. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], maxWidth = 60): string {
  const cell = (v: unknown): string => {
    // Cells are scalars (the columns' getters return strings, numbers, booleans or dates).
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    const s = v === undefined || v === null || v === '' ? '-' : String(v).replace(/\s+/g, ' ');
    return s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s;
  };
  const matrix = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, get]) => cell(get(r))))];
  const widths = columns.map((_, i) => Math.max(...matrix.map((line) => (line[i] ?? '').length)));
  return matrix
    .map((line) =>
      line
        .map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `key: value` lines for one record. */
export function keyValues(record: Record<string, unknown>): string {
  const entries = Object.entries(record).filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries
    .map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}
