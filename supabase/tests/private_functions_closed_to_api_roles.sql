-- No function in schema `private` is executable by PUBLIC, and the retention functions by no API
-- role. authenticated and service_role have USAGE on `private` (RLS helpers), so EXECUTE left to
-- PUBLIC there is callable by any API session. Run as the non-superuser postgres, as on hosted
-- Supabase: a REVOKE that postgres may not issue (it no longer owns the function) is a silent
-- warning there, and the grant stays (20261125020200 left EXECUTE on
-- private.delete_audit_logs_between to PUBLIC; fixed by 20261126010000).
begin;
select plan(13);

-- A NULL proacl means PostgreSQL's default: EXECUTE for PUBLIC.
select is_empty($$
  select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
   where p.pronamespace = 'private'::regnamespace
     and (p.proacl is null
          or exists (select from aclexplode(p.proacl) as a where a.grantee = 0 and a.privilege_type = 'EXECUTE'))
$$, 'no function in private is executable by PUBLIC');

select is_empty($$
  select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
   where p.pronamespace = 'private'::regnamespace
     and has_function_privilege('anon', p.oid, 'EXECUTE')
$$, 'anon may execute no function in private');

select is_empty($$
  select format('%s: %s', r.rolname, p.oid::regprocedure)
    from pg_catalog.pg_proc as p
   cross join (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
   where p.pronamespace = 'private'::regnamespace
     and p.proname in ('next_purge_window', 'delete_sms_alerts_between', 'clear_consent_bodies_between',
                       'purge_expired_sms', 'delete_audit_logs_between', 'purge_expired_audit_logs',
                       'run_weekly_retention')
     and has_function_privilege(r.rolname, p.oid, 'EXECUTE')
$$, 'no API role may execute a retention function');

-- The deletion function: owned by the NOLOGIN retention role, callable only by postgres (pg_cron
-- and the purge run as postgres).
select is((select proowner::regrole::text from pg_catalog.pg_proc
            where oid = 'private.delete_audit_logs_between(timestamptz, timestamptz)'::regprocedure),
  'audit_log_retention', 'private.delete_audit_logs_between is owned by audit_log_retention');
select ok(has_function_privilege('postgres', 'private.delete_audit_logs_between(timestamptz, timestamptz)', 'EXECUTE'),
  'postgres may execute private.delete_audit_logs_between (the purge calls it)');
select is(
  (select array_agg(a.grantee::regrole::text order by a.grantee::regrole::text)
     from pg_catalog.pg_proc as p, aclexplode(p.proacl) as a
    where p.oid = 'private.delete_audit_logs_between(timestamptz, timestamptz)'::regprocedure
      and a.privilege_type = 'EXECUTE' and a.grantee <> 0),
  array['audit_log_retention', 'postgres'],
  'EXECUTE on private.delete_audit_logs_between is held by its owner and postgres only');

-- The same, as the API would see it: an audit row past retention, then each role tries to delete it.
insert into public.system_audit_logs (created_at, area, action, target)
values (now() - interval '800 days', 'twilio', 'sms_send', 'privtest:expired');

select tests.create_user('user@private-functions.example.com', id => '5a000000-0000-4000-8000-0000000000a1');

select tests.authenticate_as_anon();
select throws_ok($$ select private.delete_audit_logs_between('-infinity', now() - interval '2 years') $$,
  '42501', null, 'anon cannot call private.delete_audit_logs_between');
select tests.authenticate_as('5a000000-0000-4000-8000-0000000000a1');
select throws_ok($$ select private.delete_audit_logs_between('-infinity', now() - interval '2 years') $$,
  '42501', null, 'authenticated cannot call private.delete_audit_logs_between');
select throws_ok($$ select private.purge_expired_audit_logs() $$,
  '42501', null, 'authenticated cannot call private.purge_expired_audit_logs');
select tests.authenticate_as_service_role();
select throws_ok($$ select private.delete_audit_logs_between('-infinity', now() - interval '2 years') $$,
  '42501', null, 'service_role cannot call private.delete_audit_logs_between');
select throws_ok($$ select private.purge_expired_sms() $$,
  '42501', null, 'service_role cannot call private.purge_expired_sms');
select tests.clear_authentication();
select is((select count(*)::int from public.system_audit_logs where target = 'privtest:expired'), 1,
  'the expired row is still there: no API role deleted it');

-- postgres still purges through the function.
select lives_ok($$ select private.purge_expired_audit_logs() $$, 'postgres runs the audit purge');

select * from finish();
rollback;
