import { Annotations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { ImportPlan } from '../../shared/plan.js';

/**
 * Synth-time warning: a plan that fills a credential field from a custom attribute of a pool this
 * stack creates trusts whoever can write that attribute. Cognito lets users set their own
 * attributes (at sign-up with self sign-up on, and with UpdateUserAttributes) unless every app
 * client's write attributes exclude them; and an immutable attribute can still be set at sign-up.
 * The stack cannot see the app clients (they are created elsewhere), so it warns instead of failing.
 */
export const CREDENTIAL_ATTRIBUTE_WARNING_ID = 'TrayAuthImport:CredentialFromUserAttribute';

/** `auths[i].data.<field>` ← `custom:...` pairs in the plan. */
export function credentialFieldsFromCustomAttributes(plan: ImportPlan): { path: string; attribute: string }[] {
  return plan.auths.flatMap((auth, i) =>
    Object.entries(auth.data).flatMap(([field, source]) =>
      source.attribute?.startsWith('custom:') ? [{ path: `auths[${i}].data.${field}`, attribute: source.attribute }] : [],
    ),
  );
}

export function warnOnCredentialAttributes(scope: IConstruct, plan: ImportPlan, pool: { selfSignUpEnabled: boolean }): void {
  for (const { path, attribute } of credentialFieldsFromCustomAttributes(plan)) {
    const fix =
      `leave "${attribute}" out of every app client's writeAttributes (a client without writeAttributes lets users write every mutable attribute) and set it only from your backend (AdminUpdateUserAttributes), ` +
      'or read the credential from Secrets Manager ({"secret": {"secretIdTemplate": "tray-import/users/{{sub}}", "field": "..."}}).';
    if (pool.selfSignUpEnabled) {
      // The pattern the red team exploited: anyone signs up choosing the attribute, and with it
      // whose credential is imported for them. A warning (acknowledgeable, with a reason) rather than
      // an error: the stack cannot see the app clients that may already exclude the attribute.
      Annotations.of(scope).addWarningV2(
        `${CREDENTIAL_ATTRIBUTE_WARNING_ID}:${path.replace(/\[(\d+)\]/g, '.$1')}`,
        `the import plan fills the credential field ${path} from the user attribute "${attribute}" of the pool this stack creates, and self sign-up is on: anyone can choose its value when signing up. ${fix}`,
      );
    } else {
      // Without self sign-up only administrators create users, but users may still update their
      // own attributes through an app client that allows it.
      Annotations.of(scope).addInfo(`the import plan fills the credential field ${path} from the user attribute "${attribute}": ${fix}`);
    }
  }
}
