import { CommanderError } from 'commander';
import { parseRunOptions } from './runner/options.js';
import { processOutput, runLocalPipeline } from './runner/pipeline.js';
import { UsageError } from './runner/types.js';

/**
 * `npm start`: sign-ups to enabled Tray instances on this machine. See docs/local-run.md.
 * Exit status: 0 when every user ended as expected, 1 when not, 2 for bad options or files.
 */
async function main(): Promise<number> {
  let options;
  try {
    options = parseRunOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed help or the error
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  let result;
  try {
    result = await runLocalPipeline(options, processOutput());
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  const { stop } = result;
  if (stop) {
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    process.stderr.write('\nstopping…\n');
    await stop();
  }
  return result.ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; a stray handle must not keep a finished run alive.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`npm start failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
