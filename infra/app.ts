import { App } from 'aws-cdk-lib';
import { buildApp } from './build.js';

/**
 * The CDK app (cdk.json: `npx tsx infra/app.ts`). Config: `-c config=path`, else
 * tray-auth-import.config.json at the repository root, else config.example.json.
 */
const app = new App();
buildApp(app);
app.synth();
