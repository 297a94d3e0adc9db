// The seed, the settings template and the generated local settings must agree on which fictional
// number is the Twilio number and which is the owner's mobile: inbound routing depends on it.
import assert from "node:assert/strict";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { generateLocalProviderSettings } from "../../scripts/local-supabase/local-config.ts";
import { withDb } from "../_helpers.ts";

const EXAMPLE = new URL("../../supabase/functions/.env.example", import.meta.url);
const ROLES = ["TWILIO_PHONE_NUMBER", "OWNER_MOBILE", "PUBLIC_CONTACT_NUMBER"] as const;

Deno.test(".env.example and the generated local settings give the numbers the same roles", async () => {
  const example = parseDotenv(await Deno.readTextFile(EXAMPLE));
  const local = generateLocalProviderSettings();
  for (const name of ROLES) assert.equal(local[name], example[name], name);
  assert.notEqual(example.TWILIO_PHONE_NUMBER, example.OWNER_MOBILE, "the Twilio number is not the owner's mobile");
});

Deno.test("the seed sends from the Twilio number and forwards calls to the owner's mobile", async () => {
  const local = generateLocalProviderSettings();
  const seen = await withDb(async (sql) => ({
    smsFrom: (await sql`select distinct from_number from sms_alerts where direction = 'outbound'`).map((r) =>
      r.from_number
    ),
    smsTo: (await sql`select distinct to_number from sms_alerts where direction = 'inbound'`).map((r) => r.to_number),
    callsTo: (await sql`select distinct to_number from voice_calls`).map((r) => r.to_number),
    forwardedTo: (await sql`select distinct forwarded_to from voice_calls where forwarded_to is not null`).map((r) =>
      r.forwarded_to
    ),
  }));
  assert.deepEqual(seen.smsFrom, [local.TWILIO_PHONE_NUMBER]);
  assert.deepEqual(seen.smsTo, [local.TWILIO_PHONE_NUMBER]);
  assert.deepEqual(seen.callsTo, [local.TWILIO_PHONE_NUMBER]);
  assert.deepEqual(seen.forwardedTo, [local.OWNER_MOBILE]);
});
