// The settings the system status reports: the 17 of the operations guide ("Variables
// d'environnement : 17/17 présentes"), under the names the functions read them by, then every other
// setting env.ts knows. Verdicts only (ok | missing | malformed + reason): env.ts never puts a value
// or a fragment of one in a report.
import { SETTING_NAMES, type SettingName, type SettingReport, type SettingsSource, settingsSource } from "../_shared/env.ts";

/** The guide's 17 settings: our name, and the name the guide (a Next.js deployment) gave it. */
export const SEED_SETTINGS: readonly { name: SettingName; seed: string }[] = [
  { name: "APP_URL", seed: "NEXT_PUBLIC_APP_URL" },
  { name: "SUPABASE_URL", seed: "NEXT_PUBLIC_SUPABASE_URL" },
  // The anon key's successor (sb_publishable_…), which the platform gives every function.
  { name: "SUPABASE_PUBLISHABLE_KEYS", seed: "NEXT_PUBLIC_SUPABASE_ANON_KEY" },
  // The service_role key's successor (sb_secret_…).
  { name: "SUPABASE_SECRET_KEYS", seed: "SUPABASE_SERVICE_ROLE_KEY" },
  { name: "STRIPE_SECRET_KEY", seed: "STRIPE_SECRET_KEY" },
  { name: "STRIPE_WEBHOOK_SECRET", seed: "STRIPE_WEBHOOK_SECRET" },
  { name: "STRIPE_PRICE_MONTHLY", seed: "STRIPE_PRICE_MONTHLY" },
  { name: "STRIPE_PRICE_ANNUAL", seed: "STRIPE_PRICE_ANNUAL" },
  { name: "STRIPE_PRICE_ADDON_SITE_MONTHLY", seed: "STRIPE_PRICE_ADDON_SITE_MONTHLY" },
  { name: "STRIPE_PRICE_ADDON_SITE_ANNUAL", seed: "STRIPE_PRICE_ADDON_SITE_ANNUAL" },
  { name: "STRIPE_ACCOUNT_COUNTRY", seed: "STRIPE_ACCOUNT_COUNTRY" },
  { name: "TWILIO_ACCOUNT_SID", seed: "TWILIO_ACCOUNT_SID" },
  { name: "TWILIO_AUTH_TOKEN", seed: "TWILIO_AUTH_TOKEN" },
  { name: "TWILIO_MESSAGING_SERVICE_SID", seed: "TWILIO_MESSAGING_SERVICE_SID" },
  { name: "TWILIO_PHONE_NUMBER", seed: "TWILIO_PHONE_NUMBER" },
  { name: "OWNER_MOBILE", seed: "OWNER_MOBILE" },
  { name: "PUBLIC_CONTACT_NUMBER", seed: "PUBLIC_CONTACT_NUMBER" },
];

/** One entry of the status's settings list (what private.system_status receives and returns). */
export interface StatusSetting extends SettingReport {
  /** One of the guide's 17. */
  seed: boolean;
  /** The guide's name for it, when it differs from ours. */
  seed_name?: string;
}

/** The guide's 17 first (in its order), then every other setting env.ts validates. */
export function statusSettings(source: SettingsSource = settingsSource()): StatusSetting[] {
  const seedNames = new Map(SEED_SETTINGS.map((s) => [s.name, s.seed]));
  const others = SETTING_NAMES.filter((name) => !seedNames.has(name));
  return source.report([...seedNames.keys(), ...others]).map((entry) => {
    const seedName = seedNames.get(entry.name);
    return {
      ...entry,
      seed: seedName !== undefined,
      ...(seedName !== undefined && seedName !== entry.name ? { seed_name: seedName } : {}),
    };
  });
}
