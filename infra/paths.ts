import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is `infra/paths.ts`): entries, lock file and default config resolve from here, not from the cwd. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts);

/** Read by the app when no `-c config=...` is given: the deployment's own settings (one per environment). */
export const DEFAULT_CONFIG_FILE = 'tray-auth-import.config.json';
/** Committed; used when the default file does not exist (fresh clone, CI) so that `cdk synth` works offline. */
export const EXAMPLE_CONFIG_FILE = 'config.example.json';
