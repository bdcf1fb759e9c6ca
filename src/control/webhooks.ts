/**
 * webhooks (control plane): users' webhooks served from the catalogue, and
 * the events the nodes report for them.
 *
 * catalogueWebhookStore adapts the catalogue (store/webhooks.ts) to the
 * WebhookStore the webhook service and dispatcher work over
 * (services/webhooks/store.ts), so `kova control-plane` serves the same
 * routes with the same validation, limits and error codes as `kova serve`.
 *
 * NodeEvents takes a batch from a node's outbox (POST /node/v1/events):
 * each event is recorded in one transaction with its deliveries, once per
 * event id, and only for a deployment placed on that node. The answer lists
 * the ids the node may delete: recorded now, recorded before, or refused
 * for good (another node's deployment, an unknown event, data over
 * MAX_EVENT_DATA_BYTES). A failure of the database throws (503): the node keeps the
 * batch and sends it again.
 */
import type { Logger } from 'pino';
import { isId } from '../core/ids.js';
import type { EventsReply, NodeEvent } from '../network/protocol.js';
import { isWebhookEvent } from '../services/webhooks/events.js';
import type { WebhookService } from '../services/webhooks/service.js';
import type { WebhookStore } from '../services/webhooks/store.js';
import type { Catalogue, CatalogueNode } from './catalogue.js';

/** Events a node may send in one request. */
export const MAX_EVENTS_PER_REQUEST = 100;
/** The largest `data` of one event, as JSON: the body every delivery of it stores and sends. */
export const MAX_EVENT_DATA_BYTES = 64 * 1024;

export function catalogueWebhookStore(c: Catalogue): WebhookStore {
  return {
    get: (id) => c.webhook(id),
    listByUser: (userId) => c.webhooksOf(userId),
    lastDelivery: (id) => c.lastDelivery(id),
    insertCapped: (w, max) => c.insertWebhook(w, max),
    delete: (id) => c.deleteWebhook(id),
    deliveries: (id, limit, before) => c.webhookDeliveries(id, limit, before),
    recordEvent: (ev, nodeId, newDeliveryId) => c.recordEvent(ev, nodeId, newDeliveryId),
    claim: (now, limit, leaseMs) => c.claimDeliveries(now, limit, leaseMs),
    recordAttempt: (id, lease, a) => c.recordDeliveryAttempt(id, lease, a),
    prune: (before) => c.pruneDeliveries(before),
  };
}

/** Records nodes' events for the webhooks of their deployments' owners. */
export class NodeEvents {
  constructor(
    private readonly hooks: WebhookService,
    private readonly log: Logger,
  ) {}

  /** take records each event of `node` in order; resolves with the ids the node may delete. */
  async take(node: CatalogueNode, events: readonly NodeEvent[]): Promise<EventsReply> {
    const acked: string[] = [];
    for (const e of events) {
      if (!isId('evt', e.id) || !isWebhookEvent(e.event)) {
        this.log.warn({ node: node.name, event: e.event, id: e.id }, 'a node reported an event this control plane does not know; dropped');
        acked.push(e.id);
        continue;
      }
      if (Buffer.byteLength(JSON.stringify(e.data)) > MAX_EVENT_DATA_BYTES) {
        this.log.warn({ node: node.name, event: e.event, id: e.id }, 'a node reported an event larger than any Kova makes; dropped');
        acked.push(e.id);
        continue;
      }
      const r = await this.hooks.record(
        {
          id: e.id,
          event: e.event,
          deploymentId: e.deploymentId,
          deploymentName: e.deploymentName,
          createdAt: e.createdAt,
          data: e.data,
        },
        node.id,
      );
      if (r.outcome === 'refused') {
        this.log.warn(
          { node: node.name, deployment: e.deploymentId, event: e.event },
          'a node reported an event of a deployment not placed on it; dropped',
        );
      }
      acked.push(e.id);
    }
    return { acked };
  }
}
