import type { DeadLetterResult, LocalRunResult, ServeInfo, UserResult } from './types.js';

/** What `npm start` prints at the end: the users table, the dead-letter queue, the verdict. */

/** Left-aligned columns separated by two spaces, a dashed rule under the header. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function enabledCell(user: UserResult, checkedInTray: boolean): string {
  if (user.deadLettered) return user.expected === 'deadLettered' ? 'no (in DLQ, expected)' : 'no (in DLQ)';
  if (!user.enabled) return 'no';
  if (!checkedInTray) return 'yes';
  return user.enabledInTray ? 'yes' : 'ledger only';
}

export function renderUsersTable(result: LocalRunResult): string[] {
  const checked = result.mode === 'standin';
  const rows = result.users.map((u) => [
    u.username,
    u.trayUserId ?? '-',
    Object.values(u.authIds).join(' ') || '-',
    u.instanceId ?? '-',
    enabledCell(u, checked),
  ]);
  return renderTable(['user', 'Tray user id', 'auth id', 'instance id', 'enabled'], rows);
}

export function renderDeadLetters(result: LocalRunResult): string[] {
  const lines = [`Dead-letter queue: ${result.deadLettered.length} message${result.deadLettered.length === 1 ? '' : 's'}`];
  for (const d of result.deadLettered) lines.push(...renderDeadLetter(d, result));
  if (result.deadLettered.length === 0) lines.push('  (empty)');
  return lines;
}

function renderDeadLetter(d: DeadLetterResult, result: LocalRunResult): string[] {
  const who = `${d.username ?? '(unreadable body)'}${d.sub ? ` (sub ${d.sub})` : ''}`;
  if (!d.errorCode) {
    return [
      `  - ${who}: no reason attributes, so SQS's redrive moved it after maxReceiveCount (the worker crashed or timed out on every delivery)`,
    ];
  }
  const deliveries = d.receiveCount ? ` after ${d.receiveCount} deliver${d.receiveCount === 1 ? 'y' : 'ies'}` : '';
  const lines = [
    `  - ${who}`,
    `      ErrorCode:   ${d.errorCode} (${d.kind ?? '?'}), ErrorStep: ${d.step ?? '?'}${deliveries}`,
    `      ErrorReason: ${d.reason ?? '(none)'}`,
  ];
  if (d.expected && result.broken) {
    lines.push(
      `      Expected: this user was broken on purpose. It signed up without "${result.broken.attribute}", which the plan reads at ${result.broken.usedAt.join(', ')}.`,
    );
  } else if (!d.expected) {
    lines.push('      Not expected: this user should have been imported.');
  }
  return lines;
}

export function renderVerdict(result: LocalRunResult): string[] {
  const { counts } = result;
  const good = result.users.filter((u) => u.expected === 'enabled').length;
  if (result.ok) {
    const tray = counts.tray
      ? ` The Tray stand-in agrees: exactly ${counts.tray.users} users, ${counts.tray.authentications} authentications, ${counts.tray.instances} instances, all enabled.`
      : ' (Against your Tray the ids come from the ledger; check them in the Embedded dashboard.)';
    const dlq = result.broken ? ` The broken user is in the dead-letter queue with its reason.` : ' The dead-letter queue is empty.';
    return [
      `OK: ${counts.enabled} of ${good} users enabled in the ledger.${tray}${dlq} The import queue is empty. (${(result.durationMs / 1000).toFixed(1)}s)`,
    ];
  }
  const lines = [`FAILED: not every user ended as expected (${(result.durationMs / 1000).toFixed(1)}s):`];
  for (const p of result.problems) lines.push(`  - ${p}`);
  for (const u of result.users) for (const p of u.problems) lines.push(`  - ${u.username}: ${p}`);
  return lines;
}

export function renderReport(result: LocalRunResult): string[] {
  const { counts } = result;
  return [
    '',
    result.mode === 'standin'
      ? `Users (from the ledger, cross-checked with the Tray stand-in at ${result.trayUrl}):`
      : `Users (from the ledger; Tray: yours at ${result.trayUrl}):`,
    ...renderUsersTable(result),
    '',
    `Signed up ${counts.signedUp}/${counts.users}${counts.enqueueFailed ? ` (${counts.enqueueFailed} could not be enqueued)` : ''}, enabled ${counts.enabled}, dead-lettered ${counts.deadLettered}.`,
    ...(result.cognito
      ? [
          `Cognito (cognito-local at ${result.cognito.endpoint}): pool ${result.cognito.userPoolId} holds ${result.cognito.users} users (${result.cognito.confirmed} CONFIRMED); ` +
            `it invoked the post-confirmation trigger ${result.cognito.triggerInvocations} time${result.cognito.triggerInvocations === 1 ? '' : 's'}.`,
        ]
      : []),
    `Retries: ${counts.trayFaults === undefined ? '' : `${counts.trayFaults} Tray call${counts.trayFaults === 1 ? '' : 's'} failed (faults the stand-in injected: HTTP 500, rate limit, answer lost after a create; and its 30 calls/s rate limit), retried by the worker; `}` +
      `${counts.retried} deliver${counts.retried === 1 ? 'y' : 'ies'} went back to the queue for a later retry.`,
    ...(counts.throughput
      ? [
          `Throughput: ${counts.throughput.usersPerSecond.toFixed(2)} users/s` +
            (counts.throughput.trayRequestsPerSecond === undefined
              ? ''
              : `, ${counts.throughput.trayRequestsPerSecond.toFixed(1)} Tray requests/s`) +
            ` over ${counts.throughput.seconds.toFixed(1)} s, against a budget of ${counts.throughput.budgetPerSecond} requests/s` +
            (counts.throughput.rateLimited === undefined
              ? '.'
              : `; ${counts.throughput.rateLimited} call(s) refused by Tray's rate limit.`),
        ]
      : []),
    ...(counts.tray
      ? [
          `Tray stand-in holds ${counts.tray.users} users, ${counts.tray.authentications} authentications, ${counts.tray.instances} instances (${counts.tray.enabledInstances} enabled).`,
        ]
      : []),
    '',
    ...renderDeadLetters(result),
    '',
    ...renderVerdict(result),
  ];
}

/** With --serve: where everything listens and what to try. */
export function renderServeHelp(info: ServeInfo): string[] {
  const aws = (endpoint: string) => `AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --region us-east-1 --endpoint-url ${endpoint}`;
  const lines = [
    '',
    'Serving on 127.0.0.1 until Ctrl-C (the worker keeps polling the import queue):',
    `  SQS              ${info.sqs}    queue ${info.queueUrl}`,
    `                   ${' '.repeat(info.sqs.length)}    DLQ   ${info.dlqUrl}`,
    `  DynamoDB         ${info.dynamodb}    table ${info.tableName}`,
    `  Secrets Manager  ${info.secretsManager}`,
  ];
  if (info.tray) lines.push(`  Tray stand-in    ${info.tray}`);
  if (info.webhook) lines.push(`  Tray webhook     ${info.webhook.url}    (function URL; token: secret ${info.webhook.tokenSecretName})`);
  if (info.cognito)
    lines.push(
      `  Cognito          ${info.cognito.endpoint}    pool ${info.cognito.userPoolId}, app client ${info.cognito.clientId} (cognito-local; the trigger is wired to it)`,
    );
  lines.push('', 'Try:');
  if (info.tray) {
    const base = info.tray.replace(/\/graphql$/, '');
    lines.push(
      `  curl -s ${base}/_standin/state          # users, auths (credentials redacted), instances`,
      `  curl -s ${base}/_standin/calls          # every GraphQL call with its outcome`,
      `  curl -s -X POST ${base}/_standin/faults -H 'content-type: application/json' -d '{"operation":"createSolutionInstance","kind":"http500","times":2}'`,
    );
  }
  lines.push(
    `  ${aws(info.sqs)} sqs receive-message --queue-url ${info.dlqUrl} --message-attribute-names All`,
    `  ${aws(info.dynamodb)} dynamodb scan --table-name ${info.tableName}`,
  );
  if (info.cognito) {
    // The shell quotes each Name=…,Value=… pair (values hold spaces); the CLI's shorthand takes the rest.
    const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
    const attributes = Object.entries(info.cognito.exampleAttributes).map(([name, value]) => quote(`Name=${name},Value=${value}`));
    const cognito = aws(info.cognito.endpoint);
    lines.push(
      `  ${cognito} cognito-idp sign-up --client-id ${info.cognito.clientId} --username grace --password ${quote(info.cognito.password)} --user-attributes ${attributes.join(' ')}`,
      `  ${cognito} cognito-idp admin-confirm-sign-up --user-pool-id ${info.cognito.userPoolId} --username grace   # Cognito invokes the trigger: one more user, imported by the worker`,
    );
  }
  if (info.webhook && info.tray) {
    // The token is read from the Secrets Manager stand-in, not printed: the same step as in AWS.
    const base = info.tray.replace(/\/graphql$/, '');
    lines.push(
      `  TOKEN=$(${aws(info.secretsManager)} secretsmanager get-secret-value --secret-id ${info.webhook.tokenSecretName} --query SecretString --output text)`,
      `  curl -s -X POST ${base}/_standin/notify-expiring -H 'content-type: application/json' -d '{"authId":"${info.webhook.exampleAuthId ?? 'AUTH_ID'}","url":"${info.webhook.url}?token='"$TOKEN"'"}'   # Tray's expired-auth notification: the webhook records it in the ledger, then re-imports or alerts`,
    );
  }
  if (info.exampleMessage) {
    lines.push(
      `  ${aws(info.sqs)} sqs send-message --queue-url ${info.queueUrl} --message-body '${info.exampleMessage}'   # one more user, imported by the worker`,
    );
  }
  if (info.lifecycle && info.tray && info.cognito) {
    const l = info.lifecycle;
    const base = info.tray.replace(/\/graphql$/, '');
    lines.push(
      '',
      "After the import, with the operators' CLI against this stack (SUB: a user's sub from the table above):",
      `  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_ENDPOINT_URL_SQS=${info.sqs} AWS_ENDPOINT_URL_DYNAMODB=${info.dynamodb} AWS_ENDPOINT_URL_SECRETS_MANAGER=${info.secretsManager} AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER=${info.cognito.endpoint} TRAY_GRAPHQL_URL=${info.tray}`,
      `  L="--plan ${l.planFile} --user-pool-id ${info.cognito.userPoolId} --table ${info.tableName} --queue-url ${info.queueUrl} --master-token-secret ${l.masterTokenSecret}"`,
      "  npm run cli -- offboard SUB $L --dry-run   # what the plan's offboarding policy removes; without --dry-run the worker offboards the user",
    );
    if (l.sharedSecret)
      lines.push(
        `  ${aws(info.secretsManager)} secretsmanager put-secret-value --secret-id ${l.sharedSecret} --secret-string '{"apiKey":"rotated-api-key-0123456789"}'`,
        '  npm run cli -- rotate --all $L   # the worker creates each new auth, points the instance at it, then removes the old one',
      );
    lines.push(
      `  curl -s -X POST ${base}/_standin/solutions/${l.solutionId}/versions -H 'content-type: application/json' -d '{"requiresSystemInput":true}'   # Tray publishes a new solution version`,
      '  npm run cli -- upgrade $L   # the worker upgrades the instances behind; users whose upgrade needs their input are listed',
    );
  }
  return lines;
}
