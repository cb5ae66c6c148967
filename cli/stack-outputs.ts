import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { STACK_OUTPUT_KEYS, type StackOutputKey } from '../shared/names.js';
import { CliError, EXIT, exitCodeForError } from './toolkit/errors.js';

type Outputs = Partial<Record<StackOutputKey, string>>;

/**
 * Where the deployed resources are: each command's flag when given, else the deployed stack's
 * outputs (ids in shared/names.ts), read once per command with DescribeStacks.
 */
export class StackOutputs {
  private outputs: Promise<Outputs> | undefined;

  constructor(
    readonly stackName: string,
    private readonly cloudformation: () => CloudFormationClient,
  ) {}

  /**
   * A deployed resource: the flag's value when given, else the stack output. Fails naming the
   * flag when neither is available, so the operator knows what to pass.
   */
  async setting(key: StackOutputKey, flagValue: string | undefined, flag: string): Promise<string> {
    if (flagValue) return flagValue;
    let outputs: Outputs;
    try {
      outputs = await this.read();
    } catch (e) {
      const reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      // Not a usage error unless it is one: missing credentials, a missing stack and an unreachable endpoint each have their own exit code.
      const exitCode = exitCodeForError(e);
      const fix =
        exitCode === EXIT.credentials
          ? 'AWS credentials are missing, expired or not allowed: log in (e.g. `aws sso login`), pass --profile NAME or set AWS_PROFILE'
          : exitCode === EXIT.network
            ? 'AWS could not be reached: check the network and --region'
            : `pass ${flag}, or --stack-name with the deployed stack's name (and --region / --profile for its account)`;
      throw new CliError(`${flag} is not set and the outputs of stack "${this.stackName}" could not be read (${reason}); ${fix}`, exitCode);
    }
    const value = outputs[key];
    if (!value) {
      throw new CliError(`${flag} is not set and stack "${this.stackName}" has no output ${key}; pass ${flag}`);
    }
    return value;
  }

  /** Like setting(), but undefined instead of an error (for optional enrichment such as the ledger in `dlq list`). */
  async optionalSetting(key: StackOutputKey, flagValue: string | undefined): Promise<string | undefined> {
    if (flagValue) return flagValue;
    try {
      return (await this.read())[key];
    } catch {
      return undefined;
    }
  }

  private read(): Promise<Outputs> {
    this.outputs ??= (async () => {
      const out = await this.cloudformation().send(new DescribeStacksCommand({ StackName: this.stackName }));
      const stack = out.Stacks?.[0];
      if (!stack) throw new Error(`stack ${this.stackName} not found`);
      const outputs: Outputs = {};
      for (const o of stack.Outputs ?? []) {
        if (o.OutputKey && o.OutputValue && (STACK_OUTPUT_KEYS as readonly string[]).includes(o.OutputKey))
          outputs[o.OutputKey as StackOutputKey] = o.OutputValue;
      }
      return outputs;
    })();
    return this.outputs;
  }
}
