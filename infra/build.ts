import { Annotations, App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SERVICE_NAME } from '../shared/names.js';
import { type LoadedConfig, loadConfigFile, parseDeployConfig, resolveConfigPath, userPoolRegion } from './config.js';
import { DEFAULT_CONFIG_FILE, EXAMPLE_CONFIG_FILE } from './paths.js';
import { TrayAuthImportStack } from './stack.js';

export interface BuildOptions {
  /** A config object instead of a file (tests); validated exactly like a file. */
  config?: unknown;
  /** Base directory for the config's relative `planFile` when `config` is an object. */
  configDir?: string;
}

export interface BuiltApp {
  app: App;
  stack: TrayAuthImportStack;
  loaded: LoadedConfig;
  /** The cdk-nag pack registered on the app (its validateScope() gives the findings directly). */
  nag: AwsSolutionsChecks;
}

/**
 * Builds the app: reads and validates the config and the import plan (an invalid one throws here,
 * so `cdk synth` fails with the plan's own message), creates the stack and registers the cdk-nag
 * AwsSolutions checks, which run on every synth (cdk-nag 3: a CDK policy-validation plugin).
 */
export function buildApp(app: App, options: BuildOptions = {}): BuiltApp {
  const loaded =
    options.config !== undefined
      ? parseDeployConfig(options.config, 'deploy config', options.configDir)
      : (() => {
          const { path, isExample } = resolveConfigPath(app.node.tryGetContext('config'));
          return loadConfigFile(path, isExample);
        })();
  const { config, plan } = loaded;

  const stack = new TrayAuthImportStack(app, config.stackName, {
    config,
    plan,
    description: 'tray-auth-import: Cognito sign-ups imported into Tray Embedded (trigger, queue, DLQ, worker, ledger, alarms)',
    env: {
      account: config.account ?? process.env.CDK_DEFAULT_ACCOUNT,
      // An existing pool decides the region (its triggers must live there); else the config, else the CLI's.
      region:
        config.region ??
        (config.userPool.existingUserPoolId ? userPoolRegion(config.userPool.existingUserPoolId) : undefined) ??
        process.env.CDK_DEFAULT_REGION,
    },
  });
  Tags.of(stack).add('project', SERVICE_NAME);
  if (loaded.isExample) {
    Annotations.of(stack).addInfo(
      `No ${DEFAULT_CONFIG_FILE} and no -c config=...: synthesized from ${EXAMPLE_CONFIG_FILE} (the demo plan). Copy it and adapt it before deploying.`,
    );
  }

  const nag = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(nag);
  return { app, stack, loaded, nag };
}
