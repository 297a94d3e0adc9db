// `npm run ops -- billing …`: Stripe billing as operators check it (operations guide, "Tests de
// paiement"; runbook, "Test Checkout Stripe").
//
//   billing checkout-test   the checkout test end to end on the local stack: billing-checkout as a
//                           tenant admin, a test card in the fake Stripe, stripe-webhook, the rows
//   billing status          billing per tenant and the webhook ledger, from the database
//
// One command per module (billing-<name>.ts, sharing billing-rows.ts); a new one is an import and
// an entry in `commands` below (e.g. billing sync, with the billing-sync function).
import { defineGroup } from "./command.ts";
import checkoutTest from "./billing-checkout-test.ts";
import status from "./billing-status.ts";

export default defineGroup({
  name: "billing",
  summary: "Stripe billing: the checkout test (billing-checkout → test card → stripe-webhook → rows), billing per tenant",
  commands: [checkoutTest, status],
});
