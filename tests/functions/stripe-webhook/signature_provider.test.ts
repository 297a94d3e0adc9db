// The webhook's HMAC provider (HmacSha256Provider, @noble/hashes) against the SDK's own
// SubtleCrypto provider: the same hex digests and SHA-256 bytes, and the SDK's verification with it
// accepts what Stripe signs and refuses what it does not. (The gateway tests prove the same end to
// end: tampered body, wrong secret, expired → 400.)
import assert from "node:assert/strict";
import { Stripe } from "../../../supabase/functions/_shared/stripe/client.ts";
import { HmacSha256Provider, verifyStripeWebhook } from "../../../supabase/functions/_shared/stripe/webhook.ts";

const subtle = Stripe.createSubtleCryptoProvider();
const ours = new HmacSha256Provider();
const randomText = (n: number) => {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  // Every UTF-8 length class: ASCII, accents, CJK, an emoji (surrogate pair).
  const alphabet = ["a", "Z", "0", "é", "Québec", "中", "😀", '"', "\\", "\n"];
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
};

Deno.test("HmacSha256Provider: the same HMAC-SHA256 hex as the SDK's SubtleCrypto provider", async () => {
  for (const [secretLength, bodyLength] of [[1, 0], [24, 1], [38, 64], [38, 6_800], [70, 60_000]]) {
    const secret = `whsec_${randomText(secretLength)}`;
    const payload = `${Math.floor(Date.now() / 1000)}.${randomText(bodyLength)}`;
    const expected = await subtle.computeHMACSignatureAsync(payload, secret);
    assert.match(expected, /^[0-9a-f]{64}$/);
    assert.equal(ours.computeHMACSignature(payload, secret), expected, `secret ${secretLength}, body ${bodyLength}`);
    assert.equal(await ours.computeHMACSignatureAsync(payload, secret), expected);
  }
  const data = new TextEncoder().encode(randomText(5_000));
  assert.deepEqual(await ours.computeSHA256Async(data), await subtle.computeSHA256Async(data));
});

Deno.test("HmacSha256Provider: the SDK's check with it accepts Stripe's signature and nothing else", async () => {
  const secret = "whsec_provider_test_0123456789";
  const body = JSON.stringify({
    id: "evt_ProviderTest1",
    object: "event",
    type: "invoice.paid",
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object: { id: "in_ProviderTest1", object: "invoice", note: randomText(2_000) } },
  });
  const t = Math.floor(Date.now() / 1000);
  const v1 = await subtle.computeHMACSignatureAsync(`${t}.${body}`, secret);
  const event = await verifyStripeWebhook(body, `t=${t},v1=${v1}`, [secret]);
  assert.equal(event.id, "evt_ProviderTest1");
  await assert.rejects(verifyStripeWebhook(body + " ", `t=${t},v1=${v1}`, [secret]), /signature matches no configured webhook secret/);
  await assert.rejects(verifyStripeWebhook(body, `t=${t},v1=${v1}`, [`${secret}x`]), /signature matches no configured webhook secret/);
  const old = t - 301;
  const oldV1 = await subtle.computeHMACSignatureAsync(`${old}.${body}`, secret);
  await assert.rejects(verifyStripeWebhook(body, `t=${old},v1=${oldV1}`, [secret]), /too old/);
});
