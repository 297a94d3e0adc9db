-- RLS and privileges of the core tables (tenants, tenant_members, sites, workers), for every
-- role: anon, an authenticated user without membership, member of tenant A, admin of A, owner of
-- A, admin of B, service_role. Positive and negative cases. Fixtures are created in the test
-- transaction (independent of seed.sql) and rolled back.
begin;
select plan(78);

-- ---------------------------------------------------------------------------------------------
-- Fixtures (as postgres, through the helpers of supabase/tests/_helpers)
-- ---------------------------------------------------------------------------------------------
select tests.create_tenant('Tenant A (test)', id => 'fa000000-0000-4000-8000-000000000000');
select tests.create_tenant('Tenant B (test)', id => 'fb000000-0000-4000-8000-000000000000');

select tests.create_member('fa000000-0000-4000-8000-000000000000', 'owner', 'owner.a@rls.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a1');
select tests.create_member('fa000000-0000-4000-8000-000000000000', 'admin', 'admin.a@rls.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a2');
select tests.create_member('fa000000-0000-4000-8000-000000000000', 'member', 'member.a@rls.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a3');
select tests.create_member('fb000000-0000-4000-8000-000000000000', 'admin', 'admin.b@rls.example.com',
  id => 'fb000000-0000-4000-8000-0000000000b2');
select tests.create_member('fb000000-0000-4000-8000-000000000000', 'member', 'member.b@rls.example.com',
  id => 'fb000000-0000-4000-8000-0000000000b3');
-- Users without a membership: one the admin of A adds later, one outsider.
select tests.create_user('new.a@rls.example.com', id => 'fa000000-0000-4000-8000-0000000000a4');
select tests.create_user('outsider@rls.example.com', id => 'fc000000-0000-4000-8000-0000000000c0');

select tests.create_site('fa000000-0000-4000-8000-000000000000', 'Site A', id => 'fa000000-0000-4000-8000-00000000051a');
select tests.create_site('fb000000-0000-4000-8000-000000000000', 'Site B', id => 'fb000000-0000-4000-8000-00000000051b');
-- Tenant A pays for a second site (its admin creates "Site A2" below): an active plan with one
-- "site additionnel" add-on, as the Stripe sync writes it. B has the included site only.
insert into public.customers (id, tenant_id, stripe_customer_id) values
  ('fa000000-0000-4000-8000-00000000c05a', 'fa000000-0000-4000-8000-000000000000', 'cus_RlsCoreA');
insert into public.subscriptions (id, tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at) values
  ('fa000000-0000-4000-8000-0000000005ba', 'fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a',
   'sub_RlsCoreA', 'active', 'month', now());
insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind) values
  ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_RlsCoreAPlan', 'price_RlsMonthly', 1, 'plan'),
  ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_RlsCoreAAddon', 'price_RlsAddonSiteMonthly', 1, 'addon_site');

select tests.create_worker('fa000000-0000-4000-8000-000000000000', 'Worker A', '+15145550111',
  site_id => 'fa000000-0000-4000-8000-00000000051a', id => 'fa000000-0000-4000-8000-00000000091a');
select tests.create_worker('fb000000-0000-4000-8000-000000000000', 'Worker B', '+15145550112',
  site_id => 'fb000000-0000-4000-8000-00000000051b', id => 'fb000000-0000-4000-8000-00000000091b');

-- ---------------------------------------------------------------------------------------------
-- anon: no privilege on any core table
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_anon();

select throws_ok($$ select * from public.tenants $$, '42501', null, 'anon cannot select tenants');
select throws_ok($$ select * from public.tenant_members $$, '42501', null, 'anon cannot select tenant_members');
select throws_ok($$ select * from public.sites $$, '42501', null, 'anon cannot select sites');
select throws_ok($$ select * from public.workers $$, '42501', null, 'anon cannot select workers');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone)
     values ('fa000000-0000-4000-8000-000000000000', 'Intrus', '+15145550113') $$,
  '42501', null, 'anon cannot insert workers');
select throws_ok($$ update public.tenants set name = 'pwned' $$, '42501', null, 'anon cannot update tenants');
select throws_ok($$ delete from public.sites $$, '42501', null, 'anon cannot delete sites');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- authenticated user with no membership: sees nothing, writes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fc000000-0000-4000-8000-0000000000c0');

select is_empty($$ select id from public.tenants $$, 'outsider sees no tenant');
select is_empty($$ select tenant_id from public.tenant_members $$, 'outsider sees no membership');
select is_empty($$ select id from public.sites union all select id from public.workers $$, 'outsider sees no site or worker');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fc000000-0000-4000-8000-0000000000c0', 'owner') $$,
  '42501', null, 'outsider cannot add themselves to a tenant');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- member of A: reads A, its sites and workers and their own membership; writes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a3');

select results_eq($$ select id from public.tenants $$,
  $$ values ('fa000000-0000-4000-8000-000000000000'::uuid) $$, 'member A sees tenant A only');
select results_eq($$ select user_id from public.tenant_members $$,
  $$ values ('fa000000-0000-4000-8000-0000000000a3'::uuid) $$, 'member A sees only their own membership');
select results_eq($$ select id from public.sites $$,
  $$ values ('fa000000-0000-4000-8000-00000000051a'::uuid) $$, 'member A sees the sites of A only');
select results_eq($$ select id from public.workers $$,
  $$ values ('fa000000-0000-4000-8000-00000000091a'::uuid) $$, 'member A sees the workers of A only');

select is_empty($$ update public.tenants set name = 'Renamed by member' returning id $$,
  'member A cannot rename tenant A (0 rows)');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000000a4', 'member') $$,
  '42501', null, 'member A cannot add a member');
select is_empty($$ update public.tenant_members set role = 'admin' returning user_id $$,
  'member A cannot promote themselves (0 rows)');
select is_empty($$ delete from public.tenant_members returning user_id $$,
  'member A cannot remove members (0 rows)');
select throws_ok(
  $$ insert into public.sites (tenant_id, name) values ('fa000000-0000-4000-8000-000000000000', 'Site by member') $$,
  '42501', null, 'member A cannot create a site');
select is_empty($$ update public.sites set name = 'Renamed by member' returning id $$,
  'member A cannot update sites (0 rows)');
select is_empty($$ delete from public.sites returning id $$, 'member A cannot delete sites (0 rows)');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone)
     values ('fa000000-0000-4000-8000-000000000000', 'Worker by member', '+15145550113') $$,
  '42501', null, 'member A cannot create a worker');
select is_empty($$ update public.workers set sms_consent = true returning id $$,
  'member A cannot update workers (0 rows)');
select is_empty($$ delete from public.workers returning id $$, 'member A cannot delete workers (0 rows)');
select throws_ok($$ truncate public.workers $$, '42501', null, 'member A cannot truncate workers (TRUNCATE ignores RLS)');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of A: manages tenant A, its members (except owners), sites and workers; nothing of B
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a2');

-- tenants
select results_eq($$ select id from public.tenants $$,
  $$ values ('fa000000-0000-4000-8000-000000000000'::uuid) $$, 'admin A sees tenant A only');
select isnt_empty($$ update public.tenants set name = 'Tenant A renamed' where id = 'fa000000-0000-4000-8000-000000000000' returning id $$,
  'admin A renames tenant A');
select is_empty($$ update public.tenants set name = 'Tenant B renamed' where id = 'fb000000-0000-4000-8000-000000000000' returning id $$,
  'admin A cannot rename tenant B (0 rows)');
select throws_ok($$ insert into public.tenants (name) values ('New tenant') $$, '42501', null,
  'admin A cannot create tenants');
select throws_ok($$ delete from public.tenants where id = 'fa000000-0000-4000-8000-000000000000' $$, '42501', null,
  'admin A cannot delete tenant A');
select throws_ok($$ update public.tenants set id = gen_random_uuid() $$, '42501', null,
  'admin A cannot change a tenant id (only name is updatable)');

-- tenant_members
select results_eq($$ select user_id from public.tenant_members order by user_id $$,
  $$ values ('fa000000-0000-4000-8000-0000000000a1'::uuid), ('fa000000-0000-4000-8000-0000000000a2'::uuid),
            ('fa000000-0000-4000-8000-0000000000a3'::uuid) $$,
  'admin A sees the members of A only');
select lives_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000000a4', 'member') $$,
  'admin A adds a member to A');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fb000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000000a4', 'admin') $$,
  '42501', null, 'admin A cannot add a member to B');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fc000000-0000-4000-8000-0000000000c0', 'owner') $$,
  '42501', null, 'admin A cannot create an owner');
select isnt_empty(
  $$ update public.tenant_members set role = 'admin'
     where user_id = 'fa000000-0000-4000-8000-0000000000a4' returning user_id $$,
  'admin A promotes a member of A to admin');
select throws_ok(
  $$ update public.tenant_members set role = 'owner' where user_id = 'fa000000-0000-4000-8000-0000000000a2' $$,
  '42501', null, 'admin A cannot promote themselves to owner');
select is_empty(
  $$ update public.tenant_members set role = 'member'
     where user_id = 'fa000000-0000-4000-8000-0000000000a1' returning user_id $$,
  'admin A cannot demote the owner (0 rows)');
select is_empty(
  $$ delete from public.tenant_members where user_id = 'fa000000-0000-4000-8000-0000000000a1' returning user_id $$,
  'admin A cannot remove the owner (0 rows)');
select is_empty(
  $$ delete from public.tenant_members where tenant_id = 'fb000000-0000-4000-8000-000000000000' returning user_id $$,
  'admin A cannot remove members of B (0 rows)');
select throws_ok(
  $$ update public.tenant_members set tenant_id = 'fb000000-0000-4000-8000-000000000000'
     where user_id = 'fa000000-0000-4000-8000-0000000000a3' $$,
  '42501', null, 'admin A cannot move a membership (only role is updatable)');
select isnt_empty(
  $$ delete from public.tenant_members where user_id = 'fa000000-0000-4000-8000-0000000000a4' returning user_id $$,
  'admin A removes a member of A');

-- sites
select results_eq($$ select id from public.sites $$,
  $$ values ('fa000000-0000-4000-8000-00000000051a'::uuid) $$, 'admin A sees the sites of A only');
select lives_ok(
  $$ insert into public.sites (id, tenant_id, name)
     values ('fa000000-0000-4000-8000-00000000052a', 'fa000000-0000-4000-8000-000000000000', 'Site A2') $$,
  'admin A creates a site in A');
select throws_ok(
  $$ insert into public.sites (tenant_id, name) values ('fb000000-0000-4000-8000-000000000000', 'Site in B') $$,
  '42501', null, 'admin A cannot create a site in B');
select isnt_empty($$ update public.sites set address = '1, rue Test' where id = 'fa000000-0000-4000-8000-00000000051a' returning id $$,
  'admin A updates a site of A');
select is_empty($$ update public.sites set address = '1, rue Test' where id = 'fb000000-0000-4000-8000-00000000051b' returning id $$,
  'admin A cannot update a site of B (0 rows)');
select throws_ok(
  $$ update public.sites set tenant_id = 'fb000000-0000-4000-8000-000000000000' where id = 'fa000000-0000-4000-8000-00000000052a' $$,
  '42501', null, 'admin A cannot move a site to B');
select is_empty($$ delete from public.sites where id = 'fb000000-0000-4000-8000-00000000051b' returning id $$,
  'admin A cannot delete a site of B (0 rows)');
select isnt_empty($$ delete from public.sites where id = 'fa000000-0000-4000-8000-00000000052a' returning id $$,
  'admin A deletes a site of A');

-- workers
select results_eq($$ select id from public.workers $$,
  $$ values ('fa000000-0000-4000-8000-00000000091a'::uuid) $$, 'admin A sees the workers of A only');
select lives_ok(
  $$ insert into public.workers (id, tenant_id, site_id, full_name, phone)
     values ('fa000000-0000-4000-8000-00000000092a', 'fa000000-0000-4000-8000-000000000000',
             'fa000000-0000-4000-8000-00000000051a', 'Worker A2', '+15145550113') $$,
  'admin A creates a worker in A');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone)
     values ('fb000000-0000-4000-8000-000000000000', 'Worker in B', '+15145550114') $$,
  '42501', null, 'admin A cannot create a worker in B');
select throws_ok(
  $$ insert into public.workers (tenant_id, site_id, full_name, phone)
     values ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000051b', 'Worker on B site', '+15145550115') $$,
  '23503', null, 'admin A cannot put a worker of A on a site of B (composite FK)');
select isnt_empty($$ update public.workers set sms_consent = true where id = 'fa000000-0000-4000-8000-00000000091a' returning id $$,
  'admin A updates a worker of A');
select is_empty($$ update public.workers set sms_consent = false where id = 'fb000000-0000-4000-8000-00000000091b' returning id $$,
  'admin A cannot update a worker of B (0 rows)');
select is_empty($$ delete from public.workers where id = 'fb000000-0000-4000-8000-00000000091b' returning id $$,
  'admin A cannot delete a worker of B (0 rows)');
select isnt_empty($$ delete from public.workers where id = 'fa000000-0000-4000-8000-00000000092a' returning id $$,
  'admin A deletes a worker of A');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- owner of A: may manage owner memberships
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a1');

select isnt_empty(
  $$ update public.tenant_members set role = 'owner'
     where user_id = 'fa000000-0000-4000-8000-0000000000a2' returning user_id $$,
  'owner A promotes admin A to owner');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of B: the mirror image, sees B only
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fb000000-0000-4000-8000-0000000000b2');

select results_eq($$ select id from public.tenants $$,
  $$ values ('fb000000-0000-4000-8000-000000000000'::uuid) $$, 'admin B sees tenant B only');
select results_eq($$ select user_id from public.tenant_members order by user_id $$,
  $$ values ('fb000000-0000-4000-8000-0000000000b2'::uuid), ('fb000000-0000-4000-8000-0000000000b3'::uuid) $$,
  'admin B sees the members of B only');
select results_eq($$ select id from public.sites $$,
  $$ values ('fb000000-0000-4000-8000-00000000051b'::uuid) $$, 'admin B sees the sites of B only');
select results_eq($$ select id from public.workers $$,
  $$ values ('fb000000-0000-4000-8000-00000000091b'::uuid) $$, 'admin B sees the workers of B only');
select is_empty($$ update public.workers set full_name = 'x' where tenant_id = 'fa000000-0000-4000-8000-000000000000' returning id $$,
  'admin B cannot update workers of A (0 rows)');
select is_empty($$ delete from public.sites where tenant_id = 'fa000000-0000-4000-8000-000000000000' returning id $$,
  'admin B cannot delete sites of A (0 rows)');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-0000000000b2', 'admin') $$,
  '42501', null, 'admin B cannot join tenant A');
select isnt_empty($$ update public.tenants set name = 'Tenant B renamed' where id = 'fb000000-0000-4000-8000-000000000000' returning id $$,
  'admin B renames tenant B');
select lives_ok(
  $$ insert into public.workers (tenant_id, site_id, full_name, phone)
     values ('fb000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000051b', 'Worker B2', '+15145550111') $$,
  'admin B creates a worker in B (same number as a worker of A: unique per tenant only)');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- service_role: bypasses RLS (edge functions)
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();

select results_eq(
  $$ select count(*)::int from public.workers
     where tenant_id in ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-000000000000') $$,
  $$ values (3) $$, 'service_role sees the workers of every tenant');
select lives_ok(
  $$ insert into public.tenants (id, name) values ('fd000000-0000-4000-8000-000000000000', 'Tenant D (test)') $$,
  'service_role creates a tenant');
select isnt_empty($$ update public.workers set sms_consent = false where id = 'fb000000-0000-4000-8000-00000000091b' returning id $$,
  'service_role updates any worker (STOP keyword)');
select isnt_empty($$ delete from public.tenants where id = 'fd000000-0000-4000-8000-000000000000' returning id $$,
  'service_role deletes a tenant');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- Effects, checked as postgres
-- ---------------------------------------------------------------------------------------------
select results_eq(
  $$ select name from public.tenants
     where id in ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-000000000000') order by name $$,
  $$ values ('Tenant A renamed'), ('Tenant B renamed') $$,
  'each tenant was renamed by its own admin only');
select results_eq(
  $$ select user_id, role from public.tenant_members where tenant_id = 'fa000000-0000-4000-8000-000000000000' order by user_id $$,
  $$ values ('fa000000-0000-4000-8000-0000000000a1'::uuid, 'owner'), ('fa000000-0000-4000-8000-0000000000a2'::uuid, 'owner'),
            ('fa000000-0000-4000-8000-0000000000a3'::uuid, 'member') $$,
  'memberships of A after the admin and owner changes');
select results_eq(
  $$ select count(*)::int from public.sites where tenant_id = 'fb000000-0000-4000-8000-000000000000' $$,
  $$ values (1) $$, 'the site of B is intact');
select results_eq(
  $$ select full_name, sms_consent from public.workers where id = 'fb000000-0000-4000-8000-00000000091b' $$,
  $$ values ('Worker B', false) $$, 'the worker of B was changed only by service_role');
select policies_are('public', 'workers',
  array['workers_select_members', 'workers_insert_admins', 'workers_update_admins', 'workers_delete_admins'],
  'workers has exactly one policy per action');

select * from finish();
rollback;
