-- system_audit_logs is append-only: UPDATE, DELETE and TRUNCATE are refused for anon,
-- authenticated (even an admin who can read the rows), service_role and postgres (the table's
-- owner, not a superuser, as on hosted; even after re-granting itself the privileges). Only the
-- retention function deletes, and only rows older than one year; nobody can borrow its role.
begin;
select plan(29);

select tests.create_tenant('Tenant A (append-only test)', id => '2a000000-0000-4000-8000-000000000000');
select tests.create_tenant('Tenant B (append-only test)', id => '2b000000-0000-4000-8000-000000000000');
select tests.create_member('2a000000-0000-4000-8000-000000000000', 'admin', 'admin.a@append.example.com',
  id => '2a000000-0000-4000-8000-0000000000a2');

-- Two rows of A (one past retention) and one of B, which the admin of A must not see.
insert into public.system_audit_logs (created_at, area, action, tenant_id, target, details) values
  (now() - interval '10 days', 'twilio', 'sms_send', '2a000000-0000-4000-8000-000000000000', 'appendtest:recent', '{}'),
  (now() - interval '400 days', 'twilio', 'sms_send', '2a000000-0000-4000-8000-000000000000', 'appendtest:expired', '{}'),
  (now() - interval '10 days', 'twilio', 'sms_send', '2b000000-0000-4000-8000-000000000000', 'appendtest:other-tenant', '{}');

-- ---------------------------------------------------------------------------------------------
-- anon
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from public.system_audit_logs $$, '42501', null, 'anon cannot read the audit trail');
select throws_ok($$ update public.system_audit_logs set actor = 'x' $$, '42501', null, 'anon cannot update');
select throws_ok($$ delete from public.system_audit_logs $$, '42501', null, 'anon cannot delete');
select throws_ok($$ truncate public.system_audit_logs $$, '42501', null, 'anon cannot truncate');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- authenticated: an admin of A, who can read A's rows
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('2a000000-0000-4000-8000-0000000000a2');
select is((select count(*)::int from public.system_audit_logs where target like 'appendtest:%'), 2,
  'admin of A reads the two rows of A, not the row of B');
select throws_ok($$ update public.system_audit_logs set actor = 'x' $$, '42501', null, 'authenticated cannot update');
select throws_ok($$ delete from public.system_audit_logs $$, '42501', null, 'authenticated cannot delete');
select throws_ok($$ truncate public.system_audit_logs $$, '42501', null, 'authenticated cannot truncate');
select throws_ok($$ select private.purge_expired_audit_logs() $$, '42501', null,
  'authenticated cannot run the audit purge');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- service_role: bypasses RLS, still cannot rewrite history or borrow the retention role
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select throws_ok($$ update public.system_audit_logs set actor = 'x' $$, '42501', null, 'service_role cannot update');
select throws_ok($$ delete from public.system_audit_logs $$, '42501', null, 'service_role cannot delete');
select throws_ok($$ truncate public.system_audit_logs $$, '42501', null, 'service_role cannot truncate');
-- (SET ROLE is checked against the session user, postgres here, so test the membership itself.)
select ok(not pg_has_role('service_role', 'audit_log_retention', 'USAGE')
          and not pg_has_role('service_role', 'audit_log_retention', 'MEMBER'),
  'service_role holds no membership in the retention role: it cannot SET ROLE to it');
select throws_ok(
  $$ select * from private.delete_audit_logs_between('-infinity', now() - interval '2 years') $$,
  '42501', null, 'service_role cannot call the deletion function');
select throws_ok($$ select private.purge_expired_audit_logs() $$, '42501', null,
  'service_role cannot run the audit purge');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- postgres (owner of the table, not a superuser: locally as on hosted Supabase)
-- ---------------------------------------------------------------------------------------------
select throws_ok($$ update public.system_audit_logs set actor = 'x' $$, '42501', null, 'postgres cannot update');
select throws_ok($$ delete from public.system_audit_logs where target = 'appendtest:expired' $$, '42501', null,
  'postgres cannot delete, not even an expired row');
select throws_ok($$ truncate public.system_audit_logs $$, '42501', null, 'postgres cannot truncate');
-- The ACL itself.
select is(
  (select array_agg(a.privilege_type::text order by a.privilege_type)
   from pg_catalog.pg_class as c, aclexplode(c.relacl) as a
   where c.oid = 'public.system_audit_logs'::regclass and a.grantee = 'postgres'::regrole),
  array['INSERT', 'REFERENCES', 'SELECT', 'TRIGGER'],
  'the owner postgres holds no UPDATE/DELETE/TRUNCATE privilege');
-- Re-granting the privileges does not help: the trigger still refuses.
grant update, delete, truncate on public.system_audit_logs to postgres, service_role;
select throws_ok($$ delete from public.system_audit_logs $$, '42501', null,
  'postgres cannot delete even with the privilege re-granted');
select throws_ok($$ update public.system_audit_logs set details = '{}' $$, '42501', null,
  'postgres cannot update even with the privilege re-granted');
select tests.authenticate_as_service_role();
select throws_ok($$ delete from public.system_audit_logs $$, '42501', null,
  'service_role cannot delete even with the privilege granted');
select tests.clear_authentication();
revoke update, delete, truncate on public.system_audit_logs from postgres, service_role;
select throws_ok(
  $$ select * from private.delete_audit_logs_between('-infinity', now() - interval '30 days') $$,
  '42501', null, 'the deletion function refuses a cut-off newer than one year');
select throws_ok(
  $$ select private.purge_expired_audit_logs(now()) $$,
  '22023', null, 'the audit purge refuses a cut-off newer than one year');

-- ---------------------------------------------------------------------------------------------
-- The retention function is the exception
-- ---------------------------------------------------------------------------------------------
select lives_ok($$ select private.purge_expired_audit_logs() $$, 'the audit purge runs');
select is((select count(*)::int from public.system_audit_logs where target = 'appendtest:expired'), 0,
  'the purge deleted the row older than one year');
select is((select count(*)::int from public.system_audit_logs where target = 'appendtest:recent'), 1,
  'the purge kept the recent row');
-- Not "no pg_auth_members row": on PostgreSQL 16+ the role's creator (postgres) is an ADMIN-only
-- member, without its privileges and unable to SET ROLE to it. What matters is that no role other
-- than the superuser holds its privileges or may switch to it.
select is_empty($$
  select r.rolname::text from pg_catalog.pg_roles as r
   where r.rolname <> 'audit_log_retention' and not r.rolsuper
     and (pg_has_role(r.oid, 'audit_log_retention'::regrole, 'USAGE')
          or case when current_setting('server_version_num')::int >= 160000
                  then pg_has_role(r.oid, 'audit_log_retention'::regrole, 'SET')
                  else pg_has_role(r.oid, 'audit_log_retention'::regrole, 'MEMBER') end)
$$, 'no role holds audit_log_retention''s privileges or may SET ROLE to it');
select ok(not (select rolcanlogin from pg_catalog.pg_roles where rolname = 'audit_log_retention'),
  'audit_log_retention cannot log in');

select * from finish();
rollback;
