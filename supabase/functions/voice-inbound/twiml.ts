// TwiML for voice-inbound, built by hand: the SDK's VoiceResponse (twilio/lib/twiml/VoiceResponse.js)
// pulls the whole `twilio` package graph (deno info: 20.58 MB, 54 packages: axios, jsonwebtoken…),
// for three elements. Output is byte-for-byte what VoiceResponse gives for the same calls
// (tests/functions/voice-inbound/twiml.test.ts compares them and parses ours).

/** Text content escaped as xmlbuilder (the SDK's serializer) escapes it. */
export function escapeText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("\r", "&#xD;");
}

/** An attribute value escaped as xmlbuilder escapes it. */
export function escapeAttribute(value: string): string {
  return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll('"', "&quot;")
    .replaceAll("\t", "&#x9;").replaceAll("\n", "&#xA;").replaceAll("\r", "&#xD;");
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

function element(name: string, attributes: Record<string, string | number | boolean>, content = ""): string {
  const attrs = Object.entries(attributes).map(([k, v]) => ` ${k}="${escapeAttribute(String(v))}"`).join("");
  return content === "" ? `<${name}${attrs}/>` : `<${name}${attrs}>${content}</${name}>`;
}

/** Forward the call: <Dial answerOnBridge timeout callerId action method><Number>to</Number></Dial>. */
export function dialTwiml(opts: { to: string; callerId: string; action: string; timeoutSeconds: number }): string {
  const dial = element("Dial", {
    answerOnBridge: true,
    timeout: opts.timeoutSeconds,
    callerId: opts.callerId,
    action: opts.action,
    method: "POST",
  }, element("Number", {}, escapeText(opts.to)));
  return `${XML_DECLARATION}${element("Response", {}, dial)}`;
}

/** Say each message in its language, then hang up. */
export function sayThenHangupTwiml(messages: { language: string; text: string }[]): string {
  const says = messages.map((m) => element("Say", { language: m.language }, escapeText(m.text))).join("");
  return `${XML_DECLARATION}${element("Response", {}, says + element("Hangup", {}))}`;
}

/** Nothing more to do (the call ended normally). */
export function emptyTwiml(): string {
  return `${XML_DECLARATION}<Response/>`;
}
