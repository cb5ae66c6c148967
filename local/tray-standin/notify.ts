import * as z from 'zod';
import type { TrayState } from './state.js';

/**
 * `POST /_standin/notify-expiring {authId, url}`: sends what Tray sends 7–10 days before an auth
 * expires, for one auth of the stand-in, to the given URL (the webhook's, token included): a POST
 * of `{authentication_name, service_name, user_id, authId, external_user_id}`. Answers the
 * webhook's status and body, so that a human with curl sees what the webhook decided.
 */
export const NotifyRequestSchema = z.object({
  authId: z.string({ error: 'the id of an auth of the stand-in (see GET /_standin/state)' }).min(1),
  url: z.url({ protocol: /^https?$/, error: 'the webhook URL to notify, with its ?token=…' }),
});

export async function notifyExpiring(state: TrayState, body: unknown): Promise<{ status: number; body: unknown }> {
  const request = NotifyRequestSchema.safeParse(body);
  if (!request.success) return { status: 400, body: { error: 'invalid request', issues: request.error.issues } };
  const auth = state.auths.get(request.data.authId);
  if (!auth) return { status: 404, body: { error: `no auth "${request.data.authId}"` } };
  const user = state.users.get(auth.userId);
  const notification = {
    authentication_name: auth.name,
    // Tray sends the service's name; the stand-in knows its id only.
    service_name: auth.serviceId,
    user_id: auth.userId,
    authId: auth.id,
    external_user_id: user?.externalUserId ?? '',
  };
  try {
    const answer = await fetch(request.data.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(notification),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await answer.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: shown as text
    }
    return { status: 200, body: { sent: notification, webhook: { status: answer.status, body: parsed } } };
  } catch (e) {
    return { status: 502, body: { sent: notification, error: `the webhook could not be reached: ${(e as Error).message}` } };
  }
}
