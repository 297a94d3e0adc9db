// TWILIO_ADVANCED_OPT_OUT=true: Twilio answers the keywords itself, so sms-inbound applies them
// (consent, proof row, audit) but replies with an empty <Response/>. The handler is called directly
// (this file's own settings), against the real database.
import assert from "node:assert/strict";
import { withDb } from "../../_helpers.ts";
import { AUTH_TOKEN, CONTACT, randomSid, signedRequest } from "../twilio_helpers.ts";
import { closeDb } from "../../../supabase/functions/_shared/db.ts";

Deno.env.set("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
Deno.env.set("PUBLIC_CONTACT_NUMBER", CONTACT);
Deno.env.set("TWILIO_ADVANCED_OPT_OUT", "true");
const { handler } = await import("../../../supabase/functions/sms-inbound/handler.ts");

const PUBLIC_URL = `${Deno.env.get("SUPABASE_URL")!.replace(/\/+$/, "")}/functions/v1/sms-inbound`;
const EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

Deno.test("sms-inbound with TWILIO_ADVANCED_OPT_OUT=true: keywords applied, no reply of ours", async () => {
  await withDb(async (sql) => {
    const [{ tenant }] = await sql`insert into public.tenants (name) values ('advanced opt-out test') returning id as tenant`;
    try {
      const [{ worker }] = await sql`insert into public.workers (tenant_id, full_name, phone, sms_consent)
        values (${tenant}, 'Travailleur test', '+15145550186', true) returning id as worker`;
      for (const body of ["ARRÊT", "AIDE", "START"]) {
        const sid = randomSid();
        const p = { MessageSid: sid, From: "+15145550186", To: "+15145550199", Body: body };
        const res = await handler(await signedRequest("http://127.0.0.1:9/sms-inbound", p, { signedUrl: PUBLIC_URL }));
        assert.equal(res.status, 200, body);
        assert.equal(res.headers.get("content-type"), "text/xml; charset=utf-8");
        assert.equal(await res.text(), EMPTY, body);
        const [{ n }] = await sql`select count(*)::int as n from public.sms_alerts where provider_message_id = ${sid}`;
        assert.equal(n, 1, body);
        const [{ sms_consent }] = await sql`select sms_consent from public.workers where id = ${worker}`;
        assert.equal(sms_consent, body === "ARRÊT" ? false : body === "AIDE" ? false : true, body);
      }
    } finally {
      await sql`delete from public.tenants where id = ${tenant}`;
      await closeDb();
      Deno.env.delete("TWILIO_ADVANCED_OPT_OUT");
    }
  });
});
