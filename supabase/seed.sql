-- Local development data, loaded by `npm start` and `npm test` after the migrations (once, on a
-- fresh database). Everything here is fictional: companies, people, e-mail addresses (example.com)
-- and phone numbers (+1 514 555 01xx, reserved for fiction).
--
--   Construction Boréal inc.      owner Julie Gagnon, member Marc Bouchard, 2 sites, 3 workers,
--                                 monthly plan + 1 additional site, paid invoice
--   Entretien Laurentides ltée    admin Sarah Miller, member Luc Pelletier, 1 site, 3 workers,
--                                 annual plan, open invoice
--
-- Twilio number +15145550199 (also PUBLIC_CONTACT_NUMBER); the owner's mobile, where calls are
-- forwarded (OWNER_MOBILE), +15145550100: the same roles as in supabase/functions/.env.example.
-- The business-table inserts below also fill system_audit_logs through the audit trigger.

-- ---------------------------------------------------------------------------------------------
-- Auth users (password for all: "password123", local only)
-- ---------------------------------------------------------------------------------------------
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at
)
select
  '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated', u.email,
  extensions.crypt('password123', extensions.gen_salt('bf')), now(),
  '{"provider": "email", "providers": ["email"]}', jsonb_build_object('full_name', u.full_name),
  now(), now()
from (values
  ('a1000000-0000-4000-8000-000000000001'::uuid, 'julie.gagnon@boreal.example.com', 'Julie Gagnon'),
  ('a1000000-0000-4000-8000-000000000002'::uuid, 'marc.bouchard@boreal.example.com', 'Marc Bouchard'),
  ('b2000000-0000-4000-8000-000000000001'::uuid, 'sarah.miller@laurentides.example.com', 'Sarah Miller'),
  ('b2000000-0000-4000-8000-000000000002'::uuid, 'luc.pelletier@laurentides.example.com', 'Luc Pelletier')
) as u (id, email, full_name);

-- ---------------------------------------------------------------------------------------------
-- Tenants and members
-- ---------------------------------------------------------------------------------------------
insert into public.tenants (id, name) values
  ('11111111-1111-4111-8111-111111111111', 'Construction Boréal inc.'),
  ('22222222-2222-4222-8222-222222222222', 'Entretien Laurentides ltée');

insert into public.tenant_members (tenant_id, user_id, role) values
  ('11111111-1111-4111-8111-111111111111', 'a1000000-0000-4000-8000-000000000001', 'owner'),
  ('11111111-1111-4111-8111-111111111111', 'a1000000-0000-4000-8000-000000000002', 'member'),
  ('22222222-2222-4222-8222-222222222222', 'b2000000-0000-4000-8000-000000000001', 'admin'),
  ('22222222-2222-4222-8222-222222222222', 'b2000000-0000-4000-8000-000000000002', 'member');

-- ---------------------------------------------------------------------------------------------
-- Customers and subscriptions (Stripe test mode ids), before the sites: the database refuses a
-- site beyond the tenant's entitlement (1 included + the "site additionnel" quantity of an active
-- subscription; private.site_entitlement), so Boréal's second site needs its add-on first.
-- ---------------------------------------------------------------------------------------------
insert into public.customers (id, tenant_id, stripe_customer_id, email) values
  ('c1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'cus_SeedBoreal01',
   'comptabilite@boreal.example.com'),
  ('c2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'cus_SeedLaurentides01',
   'factures@laurentides.example.com');

insert into public.subscriptions (
  id, tenant_id, customer_id, stripe_subscription_id, status, plan_interval,
  current_period_start, current_period_end, cancel_at_period_end, stripe_updated_at
) values
  ('d1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001',
   'sub_SeedBoreal01', 'active', 'month',
   date_trunc('day', now()) - interval '10 days', date_trunc('day', now()) - interval '10 days' + interval '1 month',
   false, now() - interval '10 days'),
  ('d2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'c2000000-0000-4000-8000-000000000001',
   'sub_SeedLaurentides01', 'active', 'year',
   date_trunc('day', now()) - interval '2 days', date_trunc('day', now()) - interval '2 days' + interval '1 year',
   false, now() - interval '2 days');

insert into public.subscription_items (
  tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind
) values
  ('11111111-1111-4111-8111-111111111111', 'd1000000-0000-4000-8000-000000000001', 'si_SeedBorealPlan', 'price_SeedMonthly', 1, 'plan'),
  -- Second site of Boréal: the "site additionnel" add-on (50 $/mois).
  ('11111111-1111-4111-8111-111111111111', 'd1000000-0000-4000-8000-000000000001', 'si_SeedBorealAddon', 'price_SeedAddonSiteMonthly', 1, 'addon_site'),
  ('22222222-2222-4222-8222-222222222222', 'd2000000-0000-4000-8000-000000000001', 'si_SeedLaurentidesPlan', 'price_SeedAnnual', 1, 'plan');

-- ---------------------------------------------------------------------------------------------
-- Sites and workers
-- ---------------------------------------------------------------------------------------------
insert into public.sites (id, tenant_id, name, address) values
  ('5a000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'Chantier Rosemont', '100, rue Fictive, Montréal (Québec) H1X 0A1'),
  ('5a000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'Chantier Laval', '200, boulevard Imaginaire, Laval (Québec) H7X 0B2'),
  ('5b000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
   'Centre de service Saint-Jérôme', '300, chemin Inventé, Saint-Jérôme (Québec) J7Z 0C3');

insert into public.workers (id, tenant_id, site_id, full_name, phone, phone_verified, sms_consent, preferred_language) values
  ('3a000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', '5a000000-0000-4000-8000-000000000001',
   'Étienne Lavoie', '+15145550101', true, true, 'fr'),
  ('3a000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', '5a000000-0000-4000-8000-000000000002',
   'Kevin O''Brien', '+15145550102', true, true, 'en'),
  ('3a000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111', '5a000000-0000-4000-8000-000000000001',
   'Nadia Côté', '+15145550103', true, false, 'fr'),
  ('3b000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', '5b000000-0000-4000-8000-000000000001',
   'François Roy', '+15145550104', true, true, 'fr'),
  ('3b000000-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222', '5b000000-0000-4000-8000-000000000001',
   'Emily Chen', '+15145550105', false, false, 'en'),
  -- Same person as in Boréal: a number is unique per tenant, not across tenants.
  ('3b000000-0000-4000-8000-000000000003', '22222222-2222-4222-8222-222222222222', null,
   'Étienne Lavoie', '+15145550101', true, true, 'fr');

-- ---------------------------------------------------------------------------------------------
-- SMS (Twilio number +15145550199)
-- ---------------------------------------------------------------------------------------------
insert into public.sms_alerts (
  tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id,
  error_code, error_message, created_at, updated_at, sent_at, delivered_at
) values
  -- today: delivered
  ('11111111-1111-4111-8111-111111111111', '3a000000-0000-4000-8000-000000000001', 'outbound',
   '+15145550199', '+15145550101', 'Alerte C-Secur360 : vent violent prévu au Chantier Rosemont, travaux en hauteur suspendus.',
   'delivered', 'SM00000000000000000000000000000001', null, null,
   now() - interval '5 minutes', now() - interval '4 minutes', now() - interval '5 minutes', now() - interval '4 minutes'),
  -- today: failed (unreachable handset)
  ('11111111-1111-4111-8111-111111111111', '3a000000-0000-4000-8000-000000000002', 'outbound',
   '+15145550199', '+15145550102', 'C-Secur360 alert: high winds expected at Chantier Laval, work at height suspended.',
   'failed', 'SM00000000000000000000000000000002', 30003, 'Unreachable destination handset',
   now() - interval '4 minutes', now() - interval '3 minutes', null, null),
  -- ten days ago: delivered
  ('22222222-2222-4222-8222-222222222222', '3b000000-0000-4000-8000-000000000001', 'outbound',
   '+15145550199', '+15145550104', 'Rappel C-Secur360 : inspection des échafaudages demain 7 h.',
   'delivered', 'SM00000000000000000000000000000003', null, null,
   now() - interval '10 days', now() - interval '10 days', now() - interval '10 days', now() - interval '10 days'),
  -- inbound opt-outs
  ('11111111-1111-4111-8111-111111111111', '3a000000-0000-4000-8000-000000000003', 'inbound',
   '+15145550103', '+15145550199', 'STOP', 'received', 'SM00000000000000000000000000000004', null, null,
   now() - interval '2 days', now() - interval '2 days', null, null),
  ('22222222-2222-4222-8222-222222222222', '3b000000-0000-4000-8000-000000000002', 'inbound',
   '+15145550105', '+15145550199', 'ARRÊT', 'received', 'SM00000000000000000000000000000005', null, null,
   now() - interval '1 day', now() - interval '1 day', null, null);

insert into public.sms_consent_events (
  tenant_id, worker_id, phone, new_consent, source, keyword, message_body, provider_message_id, actor, created_at
) values
  ('11111111-1111-4111-8111-111111111111', '3a000000-0000-4000-8000-000000000001', '+15145550101', true,
   'admin', null, null, null, 'a1000000-0000-4000-8000-000000000001', now() - interval '30 days'),
  ('11111111-1111-4111-8111-111111111111', '3a000000-0000-4000-8000-000000000003', '+15145550103', false,
   'keyword', 'STOP', 'STOP', 'SM00000000000000000000000000000004', 'twilio', now() - interval '2 days'),
  ('22222222-2222-4222-8222-222222222222', '3b000000-0000-4000-8000-000000000002', '+15145550105', false,
   'keyword', 'ARRÊT', 'ARRÊT', 'SM00000000000000000000000000000005', 'twilio', now() - interval '1 day');

-- ---------------------------------------------------------------------------------------------
-- Voice: an inbound call forwarded to the on-call mobile
-- ---------------------------------------------------------------------------------------------
insert into public.voice_calls (
  tenant_id, provider_call_sid, from_number, to_number, forwarded_to, status, duration_seconds, started_at, ended_at
) values
  ('11111111-1111-4111-8111-111111111111', 'CA00000000000000000000000000000001', '+15145550101', '+15145550199',
   '+15145550100', 'completed', 95, now() - interval '3 hours', now() - interval '3 hours' + interval '95 seconds');

-- ---------------------------------------------------------------------------------------------
-- Billing: invoices and Stripe events (customers and subscriptions are above, before the sites)
-- ---------------------------------------------------------------------------------------------
-- Amounts in cents, Quebec sales tax (GST 5 % + QST 9.975 %) computed by Stripe Tax.
insert into public.invoices (
  tenant_id, customer_id, subscription_id, stripe_invoice_id, status, currency,
  subtotal_cents, tax_cents, total_cents, amount_due_cents, amount_paid_cents, amount_remaining_cents,
  hosted_invoice_url, period_start, period_end, paid_at, stripe_updated_at
) values
  ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001',
   'in_SeedBoreal01', 'paid', 'cad', 19900, 2980, 22880, 22880, 22880, 0,
   'https://invoice.stripe.com/i/acct_Seed/test_SeedBoreal01',
   date_trunc('day', now()) - interval '10 days', date_trunc('day', now()) - interval '10 days' + interval '1 month',
   now() - interval '10 days', now() - interval '10 days'),
  ('22222222-2222-4222-8222-222222222222', 'c2000000-0000-4000-8000-000000000001', 'd2000000-0000-4000-8000-000000000001',
   'in_SeedLaurentides01', 'open', 'cad', 149000, 22313, 171313, 171313, 0, 171313,
   'https://invoice.stripe.com/i/acct_Seed/test_SeedLaurentides01',
   date_trunc('day', now()) - interval '2 days', date_trunc('day', now()) - interval '2 days' + interval '1 year',
   null, now() - interval '2 days');

insert into public.billing_events (stripe_event_id, type, created, livemode, payload, received_at, processed_at, error) values
  ('evt_SeedBorealCheckout', 'checkout.session.completed', now() - interval '10 days', false,
   '{"id": "evt_SeedBorealCheckout", "object": "event", "type": "checkout.session.completed", "data": {"object": {"customer": "cus_SeedBoreal01", "subscription": "sub_SeedBoreal01"}}}',
   now() - interval '10 days', now() - interval '10 days', null),
  ('evt_SeedBorealInvoicePaid', 'invoice.paid', now() - interval '10 days', false,
   '{"id": "evt_SeedBorealInvoicePaid", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_SeedBoreal01", "customer": "cus_SeedBoreal01"}}}',
   now() - interval '10 days', now() - interval '10 days', null),
  ('evt_SeedLaurentidesSubCreated', 'customer.subscription.created', now() - interval '2 days', false,
   '{"id": "evt_SeedLaurentidesSubCreated", "object": "event", "type": "customer.subscription.created", "data": {"object": {"id": "sub_SeedLaurentides01", "customer": "cus_SeedLaurentides01"}}}',
   now() - interval '2 days', now() - interval '2 days', null),
  -- Failed processing, waiting for a retry.
  ('evt_SeedLaurentidesPaymentFailed', 'invoice.payment_failed', now() - interval '1 hour', false,
   '{"id": "evt_SeedLaurentidesPaymentFailed", "object": "event", "type": "invoice.payment_failed", "data": {"object": {"id": "in_SeedLaurentides01", "customer": "cus_SeedLaurentides01"}}}',
   now() - interval '1 hour', null, 'card_declined: your card was declined');

-- ---------------------------------------------------------------------------------------------
-- Audit trail written by the edge functions (the trigger already logged the inserts above).
-- "Today" rows stay within the current day of the session's time zone.
-- ---------------------------------------------------------------------------------------------
insert into public.system_audit_logs (created_at, area, action, actor, tenant_id, target, details) values
  (greatest(date_trunc('day', now()), now() - interval '5 minutes'), 'twilio', 'sms_send', 'service_role',
   '11111111-1111-4111-8111-111111111111', 'SM00000000000000000000000000000001',
   '{"to": "+15145550101", "status": "queued"}'),
  (greatest(date_trunc('day', now()), now() - interval '4 minutes'), 'twilio', 'sms_send', 'service_role',
   '11111111-1111-4111-8111-111111111111', 'SM00000000000000000000000000000002',
   '{"to": "+15145550102", "status": "failed", "error": "30003 Unreachable destination handset"}'),
  (now() - interval '10 days', 'twilio', 'sms_send', 'service_role',
   '22222222-2222-4222-8222-222222222222', 'SM00000000000000000000000000000003',
   '{"to": "+15145550104", "status": "queued"}'),
  (now() - interval '2 days', 'twilio', 'inbound', 'twilio',
   '11111111-1111-4111-8111-111111111111', 'SM00000000000000000000000000000004',
   '{"from": "+15145550103", "keyword": "STOP", "sms_consent": false}'),
  (now() - interval '1 day', 'twilio', 'inbound', 'twilio',
   '22222222-2222-4222-8222-222222222222', 'SM00000000000000000000000000000005',
   '{"from": "+15145550105", "keyword": "ARRÊT", "sms_consent": false}'),
  (now() - interval '3 hours', 'twilio', 'voice_forward', 'twilio',
   '11111111-1111-4111-8111-111111111111', 'CA00000000000000000000000000000001',
   '{"from": "+15145550101", "forwarded_to": "+15145550100"}'),
  (now() - interval '10 days', 'stripe', 'webhook_event', 'stripe',
   '11111111-1111-4111-8111-111111111111', 'evt_SeedBorealInvoicePaid',
   '{"type": "invoice.paid"}'),
  (now() - interval '1 hour', 'stripe', 'webhook_event', 'stripe',
   '22222222-2222-4222-8222-222222222222', 'evt_SeedLaurentidesPaymentFailed',
   '{"type": "invoice.payment_failed", "error": "card_declined: your card was declined"}'),
  (now() - interval '20 days', 'vercel', 'update_env', 'a1000000-0000-4000-8000-000000000001',
   null, 'TWILIO_MESSAGING_SERVICE_SID', '{"variable": "TWILIO_MESSAGING_SERVICE_SID"}');
