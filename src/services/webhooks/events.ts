/**
 * events: the events webhooks can subscribe to, and the sink services report
 * them to. Reporting an event only records deliveries (dispatcher.ts sends
 * them later), so it never waits on a receiver and never fails the
 * snapshot or restore that reports it.
 */

/** Every event a webhook may subscribe to. */
export const WEBHOOK_EVENTS = [
  'snapshot.failed',
  'snapshot.missed',
  'restore.completed',
  'restore.failed',
  'offsite.failed',
  'verification.failed',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export function isWebhookEvent(s: unknown): s is WebhookEvent {
  return typeof s === 'string' && (WEBHOOK_EVENTS as readonly string[]).includes(s);
}

/** Where services report events about a deployment. */
export interface EventSink {
  /** emit records `event` for the deployment's owner's webhooks; it never throws. */
  emit(event: WebhookEvent, deploymentId: string, data: Readonly<Record<string, unknown>>): void;
}
