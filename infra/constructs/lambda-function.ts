import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DeployConfigError, LAMBDA_ENV_LIMIT_BYTES } from '../config.js';
import { REPO_ROOT, repoPath } from '../paths.js';

/** The newest Node.js runtime aws-cdk-lib 2.276 knows; the bundle smoke test runs bundles under the same major. */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;
export const LAMBDA_NODE_MAJOR = 24;

/**
 * middy (and parts of Powertools) are ESM-only, so bundles are ES modules. Some CommonJS
 * dependencies still call `require` for Node built-ins; ESM has none, so the banner defines it.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __cjsRequire } from 'node:module'; const require = __cjsRequire(import.meta.url);";

/**
 * Runtime source maps: kept on (decision, issue 12). They serve the stack traces Lambda reports
 * for an error that escapes a handler or the init (a bug, a setting refused at cold start): those
 * name the TypeScript file and line instead of `index.mjs:1:234567`. The functions' own logs carry
 * error codes, names and messages, never stacks. Measured cost (bench/run.ts: a fresh process
 * importing the bundle, median of 15 interleaved runs; strace for which files are read):
 * - init under Lambda's Node 24: none. Node 24 does not open `index.mjs.map` during the import
 *   (strace); with and without the flag differed by -6 % to +9 %, within the noise of the runs.
 *   Node 20 reads and parses the map during the import: +11 % (worker) and +39 % (trigger) there,
 *   which is where the 17-22 % in issue 12 came from.
 * - the first stack trace formatted in a container: about 0.25 s of CPU, once, to decode the
 *   worker's map (10 ms without maps), paid only on the failure paths above.
 * Turned off, the maps would still be shipped (mappings only): a trace can be resolved offline,
 * or NODE_OPTIONS=--enable-source-maps set on one function while chasing a bug.
 */
export const RUNTIME_SOURCE_MAPS: boolean = true;

export interface BundledFunctionProps {
  /** Entry file relative to the repository root, exporting `handler`. */
  entry: string;
  description: string;
  timeout: Duration;
  memorySize: number;
  environment: Record<string, string>;
  logRetention: RetentionDays;
  /** Customer managed key for the log group (config `encryptLogs`). */
  logKey?: IKey | undefined;
  /** Run in these subnets with these security groups (config `vpc`). */
  vpc?: { vpcId: string; subnetIds: string[]; securityGroupIds: string[] } | undefined;
}

/**
 * A Lambda function bundled locally with esbuild (no Docker), with its own role and log group:
 * - the role has no managed policy (no AWSLambdaBasicExecutionRole and its `logs:*` on `*`); the
 *   only log permissions are CreateLogStream/PutLogEvents on this function's log group;
 * - the log group is created by the stack, with a retention period (not the deprecated
 *   `logRetention` custom resource), so it exists before the first invocation.
 * Callers add their own statements with `role.addToPrincipalPolicy`.
 */
export class BundledFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: BundledFunctionProps) {
    super(scope, id);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      ...(props.logKey ? { encryptionKey: props.logKey } : {}),
      // Logs carry user identifiers (sub, pool id): they expire with the retention period, but are
      // kept when the stack is deleted so that an incident can still be investigated.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (execution role, least privilege)`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    const network = props.vpc ? this.network(props.vpc) : {};

    const environment = { ...props.environment, ...(RUNTIME_SOURCE_MAPS ? { NODE_OPTIONS: '--enable-source-maps' } : {}) };
    checkEnvironmentSize(id, environment);

    this.fn = new NodejsFunction(this, 'Function', {
      entry: repoPath(props.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: repoPath('package-lock.json'),
      description: props.description,
      runtime: LAMBDA_RUNTIME,
      architecture: Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      role: this.role,
      logGroup: this.logGroup,
      environment,
      ...network,
      bundling: {
        format: OutputFormat.ESM,
        // Prefer packages' ES module builds: better tree shaking, and no CJS/ESM double copies.
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        target: `node${LAMBDA_NODE_MAJOR}`,
        minify: true,
        // Mappings only: stack traces resolve to file:line without shipping the sources (RUNTIME_SOURCE_MAPS).
        sourceMap: true,
        sourcesContent: false,
        // The SDK clients are bundled at the versions in package-lock.json (the ones tested),
        // not whatever the runtime happens to provide.
        bundleAwsSDK: true,
        externalModules: [],
        logLevel: LogLevel.WARNING,
      },
    });
  }

  /**
   * The function in the operator's VPC: imported subnets and security groups (nothing is looked
   * up at synth). Lambda manages the network interfaces with the function's role, which gets the
   * EC2 actions AWSLambdaVPCAccessExecutionRole has, inline (no managed policy on any role).
   */
  private network(vpc: NonNullable<BundledFunctionProps['vpc']>) {
    const imported = Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: vpc.vpcId,
      // Only the explicit subnets below are used; the zones are not read.
      availabilityZones: vpc.subnetIds.map((_, i) => `zone-${i}`),
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ManageVpcNetworkInterfaces',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "Lambda creates and deletes the function's network interfaces in the configured VPC with the execution role; these EC2 actions (those of AWSLambdaVPCAccessExecutionRole) do not support resource-level permissions.",
    });
    return {
      vpc: imported,
      vpcSubnets: { subnets: vpc.subnetIds.map((id, i) => Subnet.fromSubnetId(this, `Subnet${i}`, id)) },
      securityGroups: vpc.securityGroupIds.map((id, i) =>
        SecurityGroup.fromSecurityGroupId(this, `SecurityGroup${i}`, id, { mutable: false }),
      ),
    };
  }
}

/** Lambda refuses a deployment whose environment exceeds 4 KB; fail at synth with the reason instead. */
function checkEnvironmentSize(id: string, environment: Record<string, string>): void {
  // Values known only at deploy time (queue URLs, table names) are counted at a generous 256 bytes.
  const bytes = Object.entries(environment).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + (Token.isUnresolved(value) ? 256 : Buffer.byteLength(value)),
    0,
  );
  if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
    const plan = environment.IMPORT_PLAN;
    throw new DeployConfigError(
      `${id}: its environment would be about ${bytes} bytes, above Lambda's ${LAMBDA_ENV_LIMIT_BYTES}` +
        (plan
          ? ` (the import plan alone is ${Buffer.byteLength(plan)} bytes as JSON): shorten the plan, e.g. move long literals or formData into a secret`
          : ''),
    );
  }
}
