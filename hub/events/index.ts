// Public surface of alerts and decisions on the hub.
export { decisionPolicy, ruleSetPolicy } from "./decision-policy.ts";
export { type AlertRecord, type DecisionCheck, type DecisionRecord, EventStore } from "./event-store.ts";
export {
  type AlertDecisions,
  type AlertFacts,
  type AlertMemory,
  emptyMemory,
  evaluateAlerts,
  type FailoverFact,
  type LiveAlert,
  type NodeFacts,
} from "./alert-evaluate.ts";
export {
  type AlertRule,
  BUILTIN_RULES,
  checkRuleName,
  effectiveRules,
  parseRule,
  ruleView,
} from "./alert-rules.ts";
export {
  AckBody,
  ALERT_EVENTS,
  AlertRuleBody,
  checkBody,
  OPS,
  RULE_KINDS,
  SEVERITIES,
  WebhookBody,
} from "./alert-schemas.ts";
export { type Alert, type AlertChange, type AlertEvent, type AlertState, AlertStore } from "./alert-store.ts";
export { Alerter, type AlerterOptions } from "./alerter.ts";
export { type Delivery, type Webhook, WebhookStore } from "./webhook-store.ts";
export {
  backoffMs,
  DELIVERY_HEADER,
  notificationBody,
  SIGNATURE_HEADER,
  signBody,
  WebhookNotifier,
} from "./webhook-notifier.ts";
