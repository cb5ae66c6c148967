import { App } from 'aws-cdk-lib';
import { ImportError } from '../shared/errors.js';
import { buildApp } from './build.js';
import { DeployConfigError } from './config.js';

/**
 * The CDK app (cdk.json: `npx tsx infra/app.ts`). Config: `-c config=path`, else
 * tray-auth-import.config.json at the repository root, else config.example.json.
 * An invalid config or import plan stops the synth with its own message (no stack trace).
 */
try {
  // Synthesized explicitly below; no automatic synth of a half-built app on exit.
  const app = new App({ autoSynth: false });
  buildApp(app);
  app.synth();
} catch (e) {
  if (e instanceof DeployConfigError || (e instanceof ImportError && e.code === 'PLAN_INVALID')) {
    process.stderr.write(`\n${e.message}\n\nNothing was synthesized. Fix the deploy config or the import plan and run again.\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
