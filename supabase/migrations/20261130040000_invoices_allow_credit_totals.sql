-- A Stripe invoice can total less than zero. A tenant that drops an additional site in the middle
-- of its period gets a proration credit; when the credit is larger than the period's charges,
-- Stripe finalises an invoice whose subtotal, tax (negative tax lines) and total are negative,
-- with amount_due 0, and moves the difference to the customer's credit balance. The >= 0 checks
-- of 20261125030500 refused that invoice: its event failed (HTTP 500) and Stripe retried it for
-- days before disabling the endpoint. amount_due, amount_paid and amount_remaining stay >= 0:
-- Stripe never makes those negative.
alter table public.invoices
  drop constraint invoices_subtotal_cents_check,
  drop constraint invoices_tax_cents_check,
  drop constraint invoices_total_cents_check;

comment on column public.invoices.total_cents is
  'Stripe total in cents (after discounts and taxes); negative for a credit invoice (e.g. a downgrade''s proration credit).';
