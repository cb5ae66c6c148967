import { readFileSync } from 'node:fs';
import { type ImportPlan, parsePlanJson } from '../shared/plan.js';
import type { SeedSolution } from './tray-standin/index.js';

/**
 * The demo world of `npm start` and the tests: a plan (local/demo-plan.json, also the
 * README's example), the published solution it targets, the secret its credential comes from,
 * and Cognito-shaped users.
 */
export const DEMO_PLAN_PATH = new URL('./demo-plan.json', import.meta.url);

export function demoPlan(): ImportPlan {
  return parsePlanJson(readFileSync(DEMO_PLAN_PATH, 'utf8'), 'local/demo-plan.json');
}

export const DEMO_SOLUTION: SeedSolution = {
  id: 'sol-demo-crm-sync',
  title: 'CRM sync (demo)',
  tags: ['demo'],
  authSlots: [{ externalId: 'external_acme_crm_authentication', title: 'Acme CRM' }],
  configSlots: [
    { externalId: 'external_notification_email', title: 'Notification email', required: true },
    { externalId: 'external_sync_interval_minutes', title: 'Sync interval (minutes)', defaultValue: 60 },
  ],
};

export const DEMO_MASTER_TOKEN_SECRET = 'tray-auth-import/master-token';
export const DEMO_CREDENTIAL_SECRET = 'tray-auth-import/demo/acme-crm';

/** Values are random per run: a canary for "never logged" checks, and nothing reusable. */
export function demoSecrets(): { masterToken: string; credentials: Record<string, string> } {
  const random = () => Math.random().toString(36).slice(2, 12);
  return {
    masterToken: `demo-master-${random()}${random()}`,
    credentials: { [DEMO_CREDENTIAL_SECRET]: JSON.stringify({ apiKey: `demo-api-key-${random()}${random()}` }) },
  };
}

export interface DemoUser {
  sub: string;
  username: string;
  attributes: Record<string, string>;
}

export const DEMO_USER_POOL_ID = 'us-east-1_DemoPool1';

export function demoUsers(count: number): DemoUser[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(3, '0');
    const sub = `00000000-0000-4000-8000-000000000${n}`;
    return {
      sub,
      username: `user${n}`,
      attributes: { sub, email: `user${n}@example.com`, email_verified: 'true', name: `Demo User ${n}`, 'custom:tenant_id': `tenant-${n}` },
    };
  });
}

/** A Cognito post-confirmation event as Cognito sends it. */
export function postConfirmationEvent(
  user: DemoUser,
  triggerSource: 'PostConfirmation_ConfirmSignUp' | 'PostConfirmation_ConfirmForgotPassword' = 'PostConfirmation_ConfirmSignUp',
) {
  return {
    version: '1',
    region: 'us-east-1',
    userPoolId: DEMO_USER_POOL_ID,
    userName: user.username,
    callerContext: { awsSdkVersion: 'aws-sdk-unknown-unknown', clientId: 'demo-client' },
    triggerSource,
    request: { userAttributes: { ...user.attributes, 'cognito:user_status': 'CONFIRMED' } },
    response: {},
  } as const;
}
