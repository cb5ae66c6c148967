import { CommanderError } from 'commander';
import { CliError, EXIT, type ExitCode, errorMessage, exitCodeForCommanderError } from '../cli/toolkit/errors.js';
import { processIo } from '../cli/toolkit/output.js';
import { parseRunOptions } from './runner/options.js';
import { processOutput, runLocalPipeline } from './runner/pipeline.js';

/**
 * `npm start`: sign-ups to enabled Tray instances on this machine. See docs/local-run.md.
 * Exit status (the CLI's table, cli/toolkit/errors.ts): 0 when every user ended as expected,
 * 1 when not, 2 for bad options or files.
 */
async function main(): Promise<ExitCode> {
  const io = processIo();
  let options;
  try {
    options = parseRunOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError) return exitCodeForCommanderError(e);
    if (e instanceof CliError) {
      io.err(`error: ${errorMessage(e)}\n`);
      return e.exitCode;
    }
    throw e;
  }

  let result;
  try {
    result = await runLocalPipeline(options, processOutput());
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`error: ${errorMessage(e)}\n`);
      return e.exitCode;
    }
    throw e;
  }

  const { stop } = result;
  if (stop) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    io.err('\nstopping…\n');
    await stop();
  }
  return result.ok ? EXIT.ok : EXIT.failures;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; a stray handle must not keep a finished run alive.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`npm start failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(EXIT.failures);
  },
);
