// Replies to the SMS keywords (keywords.ts), French first (Quebec's Charter of the French language;
// CWTA: HELP/AIDE/INFO and STOP/ARRET must be answered, French keywords in French, each reply at
// most 160 characters).
//
// Length rule, decided here and enforced by tests/shared/twilio/replies.test.ts:
//   - each language part is at most 160 characters (the CWTA rule) AND GSM-7 only (the French
//     avoids ê, â, ô, î, û, ç, œ, which are not in GSM-7 and would switch the whole SMS to UCS-2,
//     70 characters a segment): so each part alone is one segment;
//   - the bilingual HELP answer (French, a line break, English) fits two concatenated GSM-7 parts
//     (≤ 306 septets), whatever E.164 number PUBLIC_CONTACT_NUMBER is (up to 16 characters).
// The contact number is shown in E.164 (+15145550100): phones make it a tap-to-call link.
export type ReplyLanguage = "fr" | "en";

const BRAND = "C-Secur360";

export function helpReplyParts(contactNumber: string): { fr: string; en: string } {
  return {
    fr: `${BRAND} : alertes SMS de sécurité au travail. Aide : ${contactNumber}. Répondez ARRET pour ne plus recevoir de SMS. Frais de messagerie possibles.`,
    en: `${BRAND}: workplace safety SMS alerts. Help: ${contactNumber}. Reply STOP to opt out. Msg & data rates may apply.`,
  };
}

/** The answer to HELP, AIDE or INFO: French then English, in one message. */
export function helpReply(contactNumber: string): string {
  const { fr, en } = helpReplyParts(contactNumber);
  return `${fr}\n${en}`;
}

const CONFIRMATIONS: Record<"opt_out" | "opt_in", Record<ReplyLanguage, (contact: string) => string>> = {
  opt_out: {
    fr: (c) => `${BRAND} : vous ne recevrez plus de SMS de notre part. Répondez START pour vous réabonner. Aide : ${c}`,
    en: (c) => `${BRAND}: you will no longer receive SMS from us. Reply START to resubscribe. Help: ${c}`,
  },
  opt_in: {
    fr: () => `${BRAND} : vous recevrez de nouveau nos alertes SMS. Répondez ARRET pour vous désabonner, AIDE pour de l'aide.`,
    en: () => `${BRAND}: you will receive our SMS alerts again. Reply STOP to unsubscribe, HELP for help.`,
  },
};

/** Confirmation of an opt-out (STOP/ARRET…) or opt-in (START…) in the worker's language. */
export function confirmationReply(kind: "opt_out" | "opt_in", language: ReplyLanguage, contactNumber: string): string {
  return CONFIRMATIONS[kind][language](contactNumber);
}

/**
 * The reply to a recognised keyword: HELP is bilingual; a confirmation is in `language` (the
 * worker's, else the keyword's: ARRET → fr), French when nothing tells.
 */
export function keywordReply(
  kind: "opt_out" | "opt_in" | "help",
  opts: { language?: ReplyLanguage | null; contactNumber: string },
): string {
  if (kind === "help") return helpReply(opts.contactNumber);
  return confirmationReply(kind, opts.language ?? "fr", opts.contactNumber);
}
