import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { classifyAwsFailure } from '../../shared/aws-errors.js';
import type { DeletedUserLookup } from './cognito.js';

/**
 * The deleted user's sub from the ledger, with Query alone (the function's only ledger grant):
 * by key when the username is a sub, else the pool's partition filtered on username or email,
 * page by page. Offboarded entries are left out: Cognito lets a username be taken again once
 * its user is deleted, and only the live one is meant.
 */
export function dynamoDeletedUserLookup(doc: DynamoDBDocumentClient, tableName: string): DeletedUserLookup {
  return {
    async hasSub(userPoolId, sub) {
      try {
        const out = await doc.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'userPoolId = :p AND #sub = :s',
            ExpressionAttributeNames: { '#sub': 'sub' },
            ExpressionAttributeValues: { ':p': userPoolId, ':s': sub },
            ProjectionExpression: '#sub',
          }),
        );
        return (out.Items ?? []).length > 0;
      } catch (e) {
        throw classifyAwsFailure(e, 'ledger', 'reading the ledger', 'INTERNAL');
      }
    },
    async subsByUsername(userPoolId, username) {
      const subs: string[] = [];
      let start: Record<string, unknown> | undefined;
      try {
        do {
          const out = await doc.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: 'userPoolId = :p',
              FilterExpression: '(username = :u OR email = :u) AND #status <> :offboarded',
              ExpressionAttributeNames: { '#sub': 'sub', '#status': 'status' },
              ExpressionAttributeValues: { ':p': userPoolId, ':u': username, ':offboarded': 'offboarded' },
              ProjectionExpression: '#sub',
              ExclusiveStartKey: start,
            }),
          );
          for (const item of out.Items ?? []) if (typeof item.sub === 'string') subs.push(item.sub);
          start = out.LastEvaluatedKey;
        } while (start);
      } catch (e) {
        throw classifyAwsFailure(e, 'ledger', 'reading the ledger', 'INTERNAL');
      }
      return subs;
    },
  };
}
