/**
 * Each Lambda entry point's file, relative to the repository root: the stack bundles these, the
 * local runner loads them, and the bundle smoke test builds them. Named once, here.
 */
export const ENTRIES = {
  importWorker: 'functions/import-worker/handler.ts',
  postConfirmation: 'functions/post-confirmation/handler.ts',
  reconcile: 'functions/reconcile/handler.ts',
  lifecycleEvents: 'functions/lifecycle-events/handler.ts',
  trayWebhook: 'functions/tray-webhook/handler.ts',
} as const;

export type EntryName = keyof typeof ENTRIES;
