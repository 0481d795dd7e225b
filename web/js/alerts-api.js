// The API's alerts: the alerts raised across the fleet, the rules that raise
// them, a rule's preview, silences, and the channels notifications go to. Same errors as api.js (a changed
// rule is kind "rule_changed", a refused one "invalid_rule").

import { request } from "./api.js";

const id = (value) => encodeURIComponent(value);

/** GET /api/alerts/?state=… -> Alert[], newest first ("open": pending and firing). */
export function fetchAlerts(state, limit = 500) {
  return request("GET", `/api/alerts/?state=${id(state)}&limit=${limit}`);
}

/** GET /api/alerts/rules/ -> AlertRule[], by name. */
export function fetchRules() {
  return request("GET", "/api/alerts/rules/");
}

/** GET /api/alerts/rules/{id} -> AlertRule, its newest version. */
export function fetchRule(ruleId) {
  return request("GET", `/api/alerts/rules/${id(ruleId)}`);
}

/** POST /api/alerts/rules/ with an AlertRuleSpec -> AlertRule (version 1). */
export function createRule(spec) {
  return request("POST", "/api/alerts/rules/", spec);
}

/** PUT /api/alerts/rules/{id}: the version edited and the new spec -> AlertRule. */
export function updateRule(ruleId, version, spec) {
  return request("PUT", `/api/alerts/rules/${id(ruleId)}`, { version, rule: spec });
}

/** DELETE /api/alerts/rules/{id} */
export function deleteRule(ruleId) {
  return request("DELETE", `/api/alerts/rules/${id(ruleId)}`);
}

/** POST /api/alerts/preview/ with an AlertRuleSpec -> AlertPreview. */
export function previewRule(spec) {
  return request("POST", "/api/alerts/preview/", spec);
}

/** GET /api/alerts/silences/ -> Silence[] in force or to come. */
export function fetchSilences() {
  return request("GET", "/api/alerts/silences/");
}

/** POST /api/alerts/silences/ with a SilenceSpec -> Silence. */
export function createSilence(spec) {
  return request("POST", "/api/alerts/silences/", spec);
}

/** DELETE /api/alerts/silences/{id}: ends it now. */
export function endSilence(silenceId) {
  return request("DELETE", `/api/alerts/silences/${id(silenceId)}`);
}

/** GET /api/alerts/channels/ -> Channel[], by name (URLs whole for admins only). */
export function fetchChannels() {
  return request("GET", "/api/alerts/channels/");
}

/** POST /api/alerts/channels/ with a ChannelSpec -> Channel. */
export function createChannel(spec) {
  return request("POST", "/api/alerts/channels/", spec);
}

/** PUT /api/alerts/channels/{id} with a ChannelSpec (no secret: keeps it; "": removes it) -> Channel. */
export function updateChannel(channelId, spec) {
  return request("PUT", `/api/alerts/channels/${id(channelId)}`, spec);
}

/** DELETE /api/alerts/channels/{id}: its undelivered notifications are given up. */
export function deleteChannel(channelId) {
  return request("DELETE", `/api/alerts/channels/${id(channelId)}`);
}

/** POST /api/alerts/channels/{id}/test: sends a test notification now -> ChannelTestResult. */
export function testChannel(channelId) {
  return request("POST", `/api/alerts/channels/${id(channelId)}/test`);
}

/** GET /api/alerts/deliveries/?status=… -> Delivery[], newest first. */
export function fetchDeliveries(statuses, limit = 100) {
  return request("GET", `/api/alerts/deliveries/?status=${statuses.join(",")}&limit=${limit}`);
}
