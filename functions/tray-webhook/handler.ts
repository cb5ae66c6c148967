import { loadWebhookConfig } from './settings.js';
import { createTrayWebhook } from './webhook.js';

/** Lambda entry point (function URL): settings are read and validated once, at cold start. */
export const handler = createTrayWebhook({ config: loadWebhookConfig(process.env) });
