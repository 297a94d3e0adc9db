// `npm run ops -- billing …`: Stripe billing as operators check it (operations guide, "Tests de
// paiement"; runbook, "Test Checkout Stripe").
//
//   billing checkout-test   the checkout test end to end on the local stack: billing-checkout as a
//                           tenant admin, a test card in the fake Stripe, stripe-webhook, the rows
//   billing status          billing per tenant and the webhook ledger, from the database
//   billing sync            the billing-sync function now (as the 04:00 schedule), followed to the
//                           run's end: the drift it repaired
//
// One command per module (billing-<name>.ts, sharing billing-rows.ts); a new one is an import and
// an entry in `commands` below.
import { defineGroup } from "./command.ts";
import checkoutTest from "./billing-checkout-test.ts";
import status from "./billing-status.ts";
import sync from "./billing-sync.ts";

export default defineGroup({
  name: "billing",
  summary: "Stripe billing: the checkout test (billing-checkout → test card → stripe-webhook → rows), billing per tenant, the reconciliation now",
  commands: [checkoutTest, status, sync],
});
