// Every command of `npm run ops`, in the order `--help` lists them. Adding a command group is one
// module (see sms.ts: `export default defineGroup({ name, summary, commands: [...] })`, or a single
// `defineCommand`) and one line here.
import type { OpsEntry } from "./command.ts";
import alerts from "./alerts.ts";
import billing from "./billing.ts";
import audit from "./audit.ts";
import incident from "./incident.ts";
import purge from "./purge.ts";
import sms from "./sms.ts";
import voice from "./voice.ts";
import { dbStatus, status } from "./status.ts";
import rotateWebhookSecret from "./webhook-secret.ts";

export const REGISTRY: OpsEntry[] = [
  status,
  dbStatus,
  alerts,
  sms,
  voice,
  billing,
  audit,
  purge,
  rotateWebhookSecret,
  incident,
];
