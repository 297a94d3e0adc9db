-- Site entitlements (migrations 20261128030000..030300): allowed sites = 1 included + the
-- addon_site quantity of the tenant's active/trialing subscriptions, past_due during 14 days from
-- past_due_since; a site beyond it is refused by the database (PT402, sites_within_entitlement);
-- the billing_entitlements view shows each tenant's entitlement to its owners/admins only.
-- Concurrency (two transactions racing for the last site) needs two sessions: tests/database/
-- site_limit_concurrency.test.ts.
begin;
select plan(63);

-- ---------------------------------------------------------------------------------------------
-- Objects, and who may call what
-- ---------------------------------------------------------------------------------------------
select has_column('public', 'subscriptions', 'past_due_since', 'subscriptions.past_due_since exists');
select has_trigger('public', 'sites', 'enforce_site_entitlement', 'sites has the site limit trigger');
select has_trigger('public', 'subscriptions', 'track_past_due_since', 'subscriptions has the past_due_since trigger');
select is_definer('private', 'enforce_site_entitlement', array[]::name[], 'the site limit trigger is security definer (counts every row)');
select isnt_definer('private', 'site_entitlement', array['uuid', 'timestamp with time zone']::name[],
  'private.site_entitlement is security invoker (RLS applies to the view''s caller)');
select is(private.past_due_grace(), interval '14 days', 'the past_due grace is 14 days');
select ok(not has_function_privilege('anon', 'private.site_entitlement(uuid, timestamptz)', 'EXECUTE'),
  'anon may not execute private.site_entitlement');
select ok(not has_function_privilege('authenticated', 'private.enforce_site_entitlement()', 'EXECUTE'),
  'authenticated may not execute the trigger function');
select is((select c.reloptions from pg_catalog.pg_class as c where c.oid = 'public.billing_entitlements'::regclass),
  array['security_invoker=true'], 'billing_entitlements is a security_invoker view');

-- The fields of the error a statement raises (code, message, detail, hint, constraint), or null.
create function pg_temp.error_of(statement text)
returns jsonb
language plpgsql
as $$
declare
  v_code text; v_message text; v_detail text; v_hint text; v_constraint text; v_table text;
begin
  execute statement;
  return null;
exception when others then
  get stacked diagnostics v_code = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail,
                          v_hint = pg_exception_hint, v_constraint = constraint_name, v_table = table_name;
  return jsonb_build_object('code', v_code, 'message', v_message, 'detail', v_detail, 'hint', v_hint,
                            'constraint', v_constraint, 'table', v_table);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Fixtures (as postgres): tenants, admins and members, one customer each
-- ---------------------------------------------------------------------------------------------
-- E0: never subscribed.  E1: active, 2 add-ons.  E2: trialing, 1 add-on.  E3: past_due (grace).
-- E4: past_due since 15 days (grace over).  E5..E8: canceled, unpaid, incomplete, paused.
select tests.create_tenant(format('Entitlement E%s (test)', n), id => format('e0000000-0000-4000-8000-00000000000%s', n)::uuid)
  from generate_series(0, 8) as n;
select tests.create_member('e0000000-0000-4000-8000-000000000001', 'admin', 'admin.e1@entitlements.example.com',
  id => 'e0000000-0000-4000-8000-0000000000a1');
select tests.create_member('e0000000-0000-4000-8000-000000000001', 'member', 'member.e1@entitlements.example.com',
  id => 'e0000000-0000-4000-8000-0000000000b1');
select tests.create_member('e0000000-0000-4000-8000-000000000002', 'owner', 'owner.e2@entitlements.example.com',
  id => 'e0000000-0000-4000-8000-0000000000a2');
insert into public.customers (id, tenant_id, stripe_customer_id)
select format('e0000000-0000-4000-8000-0000000c000%s', n)::uuid, format('e0000000-0000-4000-8000-00000000000%s', n)::uuid,
       'cus_Entitlement' || n
  from generate_series(1, 8) as n;

-- Subscriptions: id e…5b0N for tenant EN; a plan item each, add-on items where the tenant has them.
insert into public.subscriptions (id, tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
select format('e0000000-0000-4000-8000-0000000005b%s', n)::uuid, format('e0000000-0000-4000-8000-00000000000%s', n)::uuid,
       format('e0000000-0000-4000-8000-0000000c000%s', n)::uuid, 'sub_Entitlement' || n, s.status,
       case when n = 2 then 'year' else 'month' end,
       case when n = 4 then now() - interval '15 days' else now() - interval '1 day' end
  from (values (1, 'active'), (2, 'trialing'), (3, 'past_due'), (4, 'past_due'), (5, 'canceled'), (6, 'unpaid'),
               (7, 'incomplete'), (8, 'paused')) as s (n, status);
insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
select format('e0000000-0000-4000-8000-00000000000%s', n)::uuid, format('e0000000-0000-4000-8000-0000000005b%s', n)::uuid,
       'si_EntitlementPlan' || n, 'price_EntitlementPlan', 1, 'plan'
  from generate_series(1, 8) as n;
insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
select format('e0000000-0000-4000-8000-00000000000%s', n)::uuid, format('e0000000-0000-4000-8000-0000000005b%s', n)::uuid,
       'si_EntitlementAddon' || n, 'price_EntitlementAddonSite', q, 'addon_site'
  from (values (1, 2), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2), (8, 2)) as a (n, q);

-- ---------------------------------------------------------------------------------------------
-- The rule, per status
-- ---------------------------------------------------------------------------------------------
select results_eq(
  $$ select n, e.allowed_sites, e.additional_sites, e.entitled, e.subscription_status
       from generate_series(0, 8) as n,
            private.site_entitlement(format('e0000000-0000-4000-8000-00000000000%s', n)::uuid) as e
      order by n $$,
  $$ values (0, 1, 0, false, null::text), (1, 3, 2, true, 'active'), (2, 2, 1, true, 'trialing'),
            (3, 3, 2, true, 'past_due'), (4, 1, 0, false, 'past_due'), (5, 1, 0, false, 'canceled'),
            (6, 1, 0, false, 'unpaid'), (7, 1, 0, false, 'incomplete'), (8, 1, 0, false, 'paused') $$,
  'allowed = 1 + add-ons of an active, trialing or past_due-in-grace subscription; 1 otherwise (none, grace over, canceled, unpaid, incomplete, paused)');
select is((select grace_until from private.site_entitlement('e0000000-0000-4000-8000-000000000003')),
  now() - interval '1 day' + interval '14 days', 'a past_due subscription''s grace ends 14 days after past_due_since');
select is((select allowed_sites from private.site_entitlement('e0000000-0000-4000-8000-000000000003', now() + interval '12 days 23 hours')),
  3, 'past_due since a day: the add-ons still count 12 days 23 hours later (within the 14 days)…');
select is((select allowed_sites from private.site_entitlement('e0000000-0000-4000-8000-000000000003', now() + interval '13 days 1 minute')),
  1, '…and stop counting once the 14 days are over');

-- ---------------------------------------------------------------------------------------------
-- The limit, enforced on insert
-- ---------------------------------------------------------------------------------------------
-- E0 (no subscription): the included site, not a second.
select lives_ok($$ select tests.create_site('e0000000-0000-4000-8000-000000000000', 'E0 site 1') $$,
  'a tenant without a subscription may create its included site');
select throws_ok($$ select tests.create_site('e0000000-0000-4000-8000-000000000000', 'E0 site 2') $$,
  'PT402', 'site limit reached: this tenant may have 1 site(s) and this would make 2',
  'a tenant without a subscription may not create a second site (PT402)');
select is(pg_temp.error_of($$ select tests.create_site('e0000000-0000-4000-8000-000000000000', 'E0 site 2') $$),
  jsonb_build_object(
    'code', 'PT402',
    'message', 'site limit reached: this tenant may have 1 site(s) and this would make 2',
    'detail', 'allowed_sites = 1 included + 0 additional (subscription: none); tenant e0000000-0000-4000-8000-000000000000',
    'hint', 'Add "Site additionnel" to the subscription (billing portal or checkout), or delete a site.',
    'constraint', 'sites_within_entitlement',
    'table', 'sites'),
  'the error carries the entitlement (detail), what to do (hint), and the constraint and table names');

-- E1 (active, 2 add-ons): three sites, as its admin; the fourth is refused; nothing half-written.
select tests.authenticate_as('e0000000-0000-4000-8000-0000000000a1');
select lives_ok(
  $$ insert into public.sites (tenant_id, name) values
       ('e0000000-0000-4000-8000-000000000001', 'E1 site 1'), ('e0000000-0000-4000-8000-000000000001', 'E1 site 2') $$,
  'admin of E1 (plan + 2 add-ons) creates two sites');
select lives_ok($$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000001', 'E1 site 3') $$,
  'admin of E1 creates the third site (1 included + 2 additional)');
select throws_ok($$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000001', 'E1 site 4') $$,
  'PT402', 'site limit reached: this tenant may have 3 site(s) and this would make 4', 'admin of E1 may not create a fourth site');
select is((select count(*)::int from public.sites where tenant_id = 'e0000000-0000-4000-8000-000000000001'), 3,
  'the refused site was not written');
select is((select count(*)::int from public.system_audit_logs where details ->> 'table' = 'sites'
             and details -> 'changed' -> 'name' ->> 'new' = 'E1 site 4'), 0,
  'nor its audit row');
select tests.clear_authentication();

-- A plain member, an admin of another tenant: the RLS error, never the limit's (no information
-- about a tenant one may not write to).
select tests.authenticate_as('e0000000-0000-4000-8000-0000000000b1');
select throws_ok($$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000001', 'By member') $$,
  '42501', null, 'a member of a full tenant gets the RLS error (42501), not PT402');
select tests.authenticate_as('e0000000-0000-4000-8000-0000000000a2');
select throws_ok($$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000001', 'By other admin') $$,
  '42501', null, 'an admin of another tenant gets the RLS error (42501), not PT402');
select tests.clear_authentication();

-- E2 (trialing, 1 add-on): two sites; a multi-row insert going over is refused as a whole.
select throws_ok(
  $$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000002', 'E2 a'),
       ('e0000000-0000-4000-8000-000000000002', 'E2 b'), ('e0000000-0000-4000-8000-000000000002', 'E2 c') $$,
  'PT402', null, 'a multi-row insert beyond the limit is refused');
select is((select count(*)::int from public.sites where tenant_id = 'e0000000-0000-4000-8000-000000000002'), 0,
  '…as a whole (no row of it written)');
select lives_ok(
  $$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000002', 'E2 a'),
       ('e0000000-0000-4000-8000-000000000002', 'E2 b') $$,
  'trialing with 1 add-on: two sites');

-- E3 (past_due, in grace): the add-ons still count.  E4 (grace over), E5..E8: one site only.
select lives_ok(
  $$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000003', 'E3 a'),
       ('e0000000-0000-4000-8000-000000000003', 'E3 b'), ('e0000000-0000-4000-8000-000000000003', 'E3 c') $$,
  'past_due within the grace: 1 + 2 sites');
select throws_ok(
  $$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000004', 'E4 a'),
       ('e0000000-0000-4000-8000-000000000004', 'E4 b') $$,
  'PT402', null, 'past_due beyond the grace: the add-ons no longer count');
select is(
  (select array_agg(pg_temp.error_of(format($$ insert into public.sites (tenant_id, name) values
            ('e0000000-0000-4000-8000-00000000000%s', 'a'), ('e0000000-0000-4000-8000-00000000000%s', 'b') $$, n, n)) ->> 'code'
          order by n)
     from generate_series(5, 8) as n),
  array['PT402', 'PT402', 'PT402', 'PT402'],
  'canceled, unpaid, incomplete, paused: a second site is refused');
select lives_ok(
  $$ insert into public.sites (tenant_id, name)
     select format('e0000000-0000-4000-8000-00000000000%s', n)::uuid, 'only' from generate_series(4, 8) as n $$,
  '…and the included site is allowed');

-- ---------------------------------------------------------------------------------------------
-- Losing entitlements: sites are kept, none added; moving a site checks the target tenant
-- ---------------------------------------------------------------------------------------------
update public.subscriptions set status = 'canceled', canceled_at = now(), stripe_updated_at = now()
 where id = 'e0000000-0000-4000-8000-0000000005b1';
select is((select allowed_sites from private.site_entitlement('e0000000-0000-4000-8000-000000000001')), 1,
  'E1 canceled: 1 site allowed');
select is((select count(*)::int from public.sites where tenant_id = 'e0000000-0000-4000-8000-000000000001'), 3,
  'E1 keeps its three sites');
select tests.authenticate_as('e0000000-0000-4000-8000-0000000000a1');
select isnt_empty($$ update public.sites set name = 'E1 site 1 renamed' where name = 'E1 site 1' returning id $$,
  'a tenant above its limit may still rename a site');
select isnt_empty($$ delete from public.sites where name = 'E1 site 3' returning id $$,
  'and delete one');
select throws_ok($$ insert into public.sites (tenant_id, name) values ('e0000000-0000-4000-8000-000000000001', 'E1 again') $$,
  'PT402', 'site limit reached: this tenant may have 1 site(s) and this would make 3',
  'but not add one while above its limit');
select tests.clear_authentication();

select throws_ok(
  $$ update public.sites set tenant_id = 'e0000000-0000-4000-8000-000000000000' where name = 'E2 a' $$,
  'PT402', null, 'moving a site to a tenant at its limit is refused');
select throws_ok(
  $$ update public.sites set tenant_id = 'e0000000-0000-4000-8000-000000000003' where name = 'E2 a' $$,
  'PT402', null, 'E3 is full too (3 of 3)…');
update public.subscription_items set quantity = 3 where stripe_subscription_item_id = 'si_EntitlementAddon3';
select lives_ok(
  $$ update public.sites set tenant_id = 'e0000000-0000-4000-8000-000000000003' where name = 'E2 a' $$,
  '…until its add-on quantity goes from 2 to 3: then the site moves');
select is((select count(*)::int from public.sites where tenant_id = 'e0000000-0000-4000-8000-000000000003'), 4,
  'E3 now has 4 sites (1 + 3)');

-- ---------------------------------------------------------------------------------------------
-- past_due_since, kept by its trigger whoever writes the row
-- ---------------------------------------------------------------------------------------------
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b3'),
  now() - interval '1 day', 'inserted past_due: past_due_since = stripe_updated_at (the event''s time)');
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b2'),
  null, 'not past_due: past_due_since is null');
update public.subscriptions set stripe_updated_at = now() where id = 'e0000000-0000-4000-8000-0000000005b3';
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b3'),
  now() - interval '1 day', 'a later event while still past_due keeps the start (the grace is not restarted)');
update public.subscriptions set past_due_since = now() where id = 'e0000000-0000-4000-8000-0000000005b3';
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b3'),
  now() - interval '1 day', 'a writer cannot move the start later while past_due');
update public.subscriptions set status = 'active', stripe_updated_at = now() where id = 'e0000000-0000-4000-8000-0000000005b4';
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b4'),
  null, 'paid (active again): past_due_since is cleared');
select is((select allowed_sites from private.site_entitlement('e0000000-0000-4000-8000-000000000004')), 3,
  '…and the add-ons count again');
update public.subscriptions set status = 'past_due', stripe_updated_at = now() + interval '1 second'
 where id = 'e0000000-0000-4000-8000-0000000005b4';
select is((select past_due_since from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b4'),
  now() + interval '1 second', 'past due again: a new grace starts at that event');
update public.subscriptions set status = 'active', stripe_updated_at = now() - interval '20 days'
 where id = 'e0000000-0000-4000-8000-0000000005b4';
select is((select status || ' ' || (past_due_since is not null) from public.subscriptions where id = 'e0000000-0000-4000-8000-0000000005b4'),
  'past_due true', 'an older event (stale) changes nothing, past_due_since included');
select throws_ok(
  $$ alter table public.subscriptions disable trigger track_past_due_since;
     update public.subscriptions set past_due_since = null where id = 'e0000000-0000-4000-8000-0000000005b4' $$,
  '23514', null, 'past_due without past_due_since is refused by a check constraint (even with the trigger off)');

-- ---------------------------------------------------------------------------------------------
-- billing_entitlements: admins read their own tenant's billing only
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.billing_entitlements $$, '42501', null, 'anon cannot read billing_entitlements');
select throws_ok($$ select private.site_entitlement('e0000000-0000-4000-8000-000000000001') $$, '42501', null,
  'anon cannot call private.site_entitlement');

select tests.authenticate_as('e0000000-0000-4000-8000-0000000000a1');
select results_eq(
  $$ select tenant_id, entitled, subscription_status, allowed_sites, used_sites, available_sites from public.billing_entitlements $$,
  $$ values ('e0000000-0000-4000-8000-000000000001'::uuid, false, 'canceled', 1, 2, 0) $$,
  'the admin of E1 sees E1''s entitlement only (canceled: 1 allowed, 2 used, 0 available)');
select is_empty($$ select * from public.billing_entitlements where tenant_id <> 'e0000000-0000-4000-8000-000000000001' $$,
  'the admin of E1 sees no other tenant''s row');
select is_empty($$ select * from private.site_entitlement('e0000000-0000-4000-8000-000000000002') where additional_sites > 0 $$,
  'called directly for another tenant, the function sees no subscription of it (RLS)');
select results_eq($$ select stripe_subscription_id from public.subscriptions $$, $$ values ('sub_Entitlement1') $$,
  'the admin of E1 reads E1''s subscription only');
select results_eq($$ select stripe_subscription_item_id from public.subscription_items order by 1 $$,
  $$ values ('si_EntitlementAddon1'), ('si_EntitlementPlan1') $$, 'and E1''s subscription items only');
select results_eq($$ select stripe_customer_id from public.customers $$, $$ values ('cus_Entitlement1') $$,
  'and E1''s customer only');

select tests.authenticate_as('e0000000-0000-4000-8000-0000000000b1');
select is_empty($$ select * from public.billing_entitlements $$, 'a plain member of E1 sees no entitlement row');
select is_empty($$ select * from public.subscriptions $$, 'nor any subscription');

select tests.authenticate_as('e0000000-0000-4000-8000-0000000000a2');
select results_eq(
  $$ select tenant_id, entitled, subscription_status, plan_interval, included_sites, additional_sites, allowed_sites,
            used_sites, available_sites from public.billing_entitlements $$,
  $$ values ('e0000000-0000-4000-8000-000000000002'::uuid, true, 'trialing', 'year', 1, 1, 2, 1, 1) $$,
  'the owner of E2 sees E2 only (trialing, 1 + 1 allowed, 1 used, 1 available)');
select throws_ok($$ insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
     values ('e0000000-0000-4000-8000-000000000002', 'e0000000-0000-4000-8000-0000000005b2', 'si_Forged', 'price_Forged', 50, 'addon_site') $$,
  '42501', null, 'an owner cannot grant themselves add-ons');
select ok(not has_table_privilege('authenticated', 'public.billing_entitlements', 'INSERT, UPDATE, DELETE, TRUNCATE'),
  'nor write to the view (no privilege)');

select tests.authenticate_as_service_role();
select is((select count(*)::int from public.billing_entitlements where tenant_id::text like 'e0000000-%'), 9,
  'service_role sees every tenant');
select tests.clear_authentication();
select is((select allowed_sites from public.billing_entitlements where tenant_id = 'e0000000-0000-4000-8000-000000000003'), 4,
  'postgres (operators in psql) sees every tenant');

select * from finish();
rollback;
