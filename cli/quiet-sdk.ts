/**
 * Imported first by cli/main.ts, before anything that loads the AWS SDK: the SDK prints a
 * "NodeVersionSupportWarning" on Node < 22 when it creates its first client, i.e. on every CLI
 * command. Node 20 is supported by this project (package.json engines), so the warning is noise
 * to operators. An explicit setting (e.g. "false") is left alone.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export {};
