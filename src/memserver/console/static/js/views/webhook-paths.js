// The project's webhooks collection, shared by the list (webhooks.js) and a webhook's deliveries (deliveries.js).
import { session } from "../core/session.js";

export function hooksPath() {
  return `/api/v1/webhooks/projects/${encodeURIComponent(session.ping.project_id)}/`;
}
