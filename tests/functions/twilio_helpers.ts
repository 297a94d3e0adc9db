// What the SMS webhook tests share: the functions' Twilio settings (tests/fixtures/functions/.env.test),
// a fake Twilio with those settings to post signed webhooks through the gateway, and signing by hand.
import { fileURLToPath } from "node:url";
import { parseDotenv } from "../../scripts/local-supabase/gateway/config.ts";
import { startTwilioFake, type TwilioFake, twilioFakeAccount } from "../../scripts/fakes/twilio.ts";
import { twilioSignature } from "../../supabase/functions/_shared/twilio/signature.ts";

export const fixtureSettings = parseDotenv(
  await Deno.readTextFile(fileURLToPath(new URL("../fixtures/functions/.env.test", import.meta.url))),
);
export const AUTH_TOKEN = fixtureSettings.TWILIO_AUTH_TOKEN;
export const CONTACT = fixtureSettings.PUBLIC_CONTACT_NUMBER;

export async function withTwilioFake<T>(fn: (fake: TwilioFake) => Promise<T>): Promise<T> {
  const fake = startTwilioFake(twilioFakeAccount(fixtureSettings));
  try {
    return await fn(fake);
  } finally {
    await fake.close();
  }
}

export function randomSid(prefix = "SM"): string {
  return prefix + Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A form POST to `url` signed as Twilio signs it (for `signedUrl`, default `url`, with `token`). */
export async function signedRequest(
  url: string,
  params: Record<string, string>,
  opts: { signedUrl?: string; signedParams?: Record<string, string>; token?: string; body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Request> {
  const signature = await twilioSignature(opts.signedUrl ?? url, opts.signedParams ?? params, opts.token ?? AUTH_TOKEN);
  return new Request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature, ...opts.headers },
    body: opts.body ?? new URLSearchParams(params),
  });
}
