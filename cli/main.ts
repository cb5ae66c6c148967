// First: silences the SDK's Node-version warning before any SDK module is loaded.
import './quiet-sdk.js';
import { pathToFileURL } from 'node:url';
import { CommanderError } from 'commander';
import type { CliDeps } from './context.js';
import { buildProgram } from './program.js';
import { EXIT, type ExitCode, errorMessage, exitCodeForCommanderError, exitCodeForError } from './toolkit/errors.js';
import { processIo } from './toolkit/output.js';

/**
 * Entry point: `npm run cli -- <command>` (tsx cli/main.ts). Exit codes (docs/operators.md):
 * 0 success, 1 failures found or partial, 2 usage error, 3 `dlq list` found messages, 4 AWS
 * credentials missing/expired/denied, 5 stack or resource not found, 6 AWS unreachable,
 * 130 interrupted twice. Ctrl-C stops long commands after the current batch with their state
 * saved; a second Ctrl-C quits at once.
 */
export async function main(argv: string[], deps: CliDeps = {}): Promise<ExitCode> {
  const io = deps.io ?? processIo();
  let code: ExitCode = EXIT.ok;
  const program = buildProgram({ ...deps, io }, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    // Commander already printed its message (unknown option, missing argument) or the help.
    if (e instanceof CommanderError) return exitCodeForCommanderError(e);
    const exitCode = exitCodeForError(e);
    const message = errorMessage(e);
    io.err(`error: ${message}\n`);
    if (program.opts<{ json?: boolean }>().json) io.out(`${JSON.stringify({ ok: false, error: { message, exitCode } }, null, 2)}\n`);
    return exitCode;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping after the current batch (state is saved); press Ctrl-C again to quit now\n');
    controller.abort();
  });
  process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
}
