/**
 * EventBridge events by their `source`: one handler per AWS service whose events drive a
 * lifecycle flow. An event of a source nobody registered is logged and dropped (the stack's
 * rules only send registered sources, so it is a wiring mistake, and retrying cannot fix it).
 * A handler that throws fails the invocation, so that Lambda retries the event and then hands it
 * to the function's on-failure queue: no event is lost silently.
 */
export interface LifecycleEvent {
  source: string;
  'detail-type'?: string | undefined;
  id?: string | undefined;
  time?: string | undefined;
  region?: string | undefined;
  detail?: unknown;
}

export type EventRoute = (event: LifecycleEvent) => Promise<void>;
export type EventRoutes = Readonly<Record<string, EventRoute>>;

export function createRouter(routes: EventRoutes, warn: (message: string, extra: Record<string, unknown>) => void) {
  return async (event: LifecycleEvent): Promise<void> => {
    const route = Object.hasOwn(routes, event.source) ? routes[event.source] : undefined;
    if (!route) {
      warn('event of a source no lifecycle handler is registered for: dropped', { source: event.source, id: event.id });
      return;
    }
    await route(event);
  };
}
