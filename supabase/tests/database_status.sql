-- private.database_status(p): each section against a manifest, starting from the manifest of this
-- very database (all ok), then one discrepancy at a time, each undone by the final rollback.
begin;
select plan(32);

-- The manifest of the database as it is (what `npm run gen:types` records from the migrations).
create function pg_temp.manifest(patch jsonb default '{}') returns jsonb language sql as $$
  select jsonb_build_object(
    'migrations', (select jsonb_agg(jsonb_build_object('version', m.version, 'name', m.name) order by m.version)
                     from supabase_migrations.schema_migrations as m),
    'schemas', '["private", "public"]'::jsonb,
    'tables', (select jsonb_agg(c.relname order by c.relname) from pg_class as c
                where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')),
    'cron_jobs', (select coalesce(jsonb_agg(jsonb_build_object('name', j.jobname, 'schedule', j.schedule) order by j.jobname), '[]')
                    from cron.job as j where j.jobname is not null),
    'vault_secrets', '[]'::jsonb) || patch
$$;
create function pg_temp.section(name text, p jsonb default pg_temp.manifest()) returns jsonb language sql as $$
  select private.database_status(p) -> name
$$;

-- Jobs scheduled by the migrations may be paused in a test stack (scripts/test.ts): active here.
select cron.alter_job(j.jobid, active => true) from cron.job as j where not j.active;

select is(private.database_status(pg_temp.manifest()) ->> 'overall', 'ok', 'the database against its own manifest: ok');
select is(pg_temp.section('migrations') ->> 'status', 'ok', 'migrations ok');
select is((pg_temp.section('migrations') ->> 'applied')::int,
  (select count(*)::int from supabase_migrations.schema_migrations), 'applied count');
select is(pg_temp.section('migrations') #>> '{last_applied,version}',
  (select max(version) from supabase_migrations.schema_migrations), 'last applied migration');
select is(pg_temp.section('rls') ->> 'status', 'ok', 'RLS on every public table');
select is(pg_temp.section('tables') ->> 'status', 'ok', 'every table present');
select is(pg_temp.section('cron') ->> 'status', 'ok', 'every job present and active');
select ok(private.database_status(pg_temp.manifest()) -> 'extensions' ? 'pg_cron', 'extensions listed');

-- ---- migrations --------------------------------------------------------------------------------
select is(pg_temp.section('migrations', pg_temp.manifest(jsonb_build_object('migrations',
    pg_temp.manifest() -> 'migrations' || '[{"version": "29991231000000", "name": "not_pushed_yet"}]'))) -> 'missing',
  '[{"version": "29991231000000", "name": "not_pushed_yet"}]', 'a deployed migration the database lacks: missing');
select is(pg_temp.section('migrations', pg_temp.manifest(jsonb_build_object('migrations',
    pg_temp.manifest() -> 'migrations' || '[{"version": "29991231000000", "name": "not_pushed_yet"}]'))) ->> 'status',
  'fail', '… fail');
select is(pg_temp.section('migrations', pg_temp.manifest(jsonb_build_object('migrations',
    (pg_temp.manifest() -> 'migrations') - 0))) -> 'unexpected',
  jsonb_build_array((pg_temp.manifest() -> 'migrations') -> 0), 'an applied migration the deployment does not know: unexpected');
select is(pg_temp.section('migrations', pg_temp.manifest(jsonb_build_object('migrations',
    jsonb_set(pg_temp.manifest() -> 'migrations', '{0,name}', '"renamed_since"')))) #>> '{renamed,0,deployed}',
  'renamed_since', 'same version, another name: renamed');
select is(private.database_status(pg_temp.manifest(jsonb_build_object('migrations',
    jsonb_set(pg_temp.manifest() -> 'migrations', '{0,name}', '"renamed_since"')))) ->> 'overall',
  'degraded', 'any migration discrepancy degrades the overall status');

-- ---- tables and RLS ----------------------------------------------------------------------------
select is(pg_temp.section('tables', pg_temp.manifest(jsonb_build_object('tables',
    pg_temp.manifest() -> 'tables' || '["dropped_by_hand"]'))) -> 'missing', '["dropped_by_hand"]', 'a table of the manifest missing');
create table public.made_in_the_dashboard (id int primary key);
select is(pg_temp.section('rls', pg_temp.manifest()) -> 'without_rls', '["made_in_the_dashboard"]', 'a public table without RLS is named');
select is(pg_temp.section('rls', pg_temp.manifest()) ->> 'status', 'fail', '… rls fail');
select is(pg_temp.section('tables', pg_temp.manifest((select jsonb_build_object('tables', jsonb_agg(c.relname order by c.relname))
    from pg_class as c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and c.relname <> 'made_in_the_dashboard')))
    -> 'unexpected', '["made_in_the_dashboard"]', 'a table the migrations do not make: unexpected');
alter table public.made_in_the_dashboard enable row level security;
select is(pg_temp.section('rls', pg_temp.manifest()) ->> 'status', 'ok', 'RLS enabled: ok');
select ok(pg_temp.section('rls', pg_temp.manifest()) -> 'tables' @> '[{"name": "made_in_the_dashboard", "rls": true, "policies": 0}]',
  'each table with its RLS flag and policy count');
drop table public.made_in_the_dashboard;

-- ---- schemas -----------------------------------------------------------------------------------
select is(pg_temp.section('schemas', pg_temp.manifest('{"schemas": ["private", "public", "nowhere"]}')) -> 'missing',
  '["nowhere"]', 'a missing schema is named');

-- ---- pg_cron -----------------------------------------------------------------------------------
select is(pg_temp.section('cron', pg_temp.manifest(jsonb_build_object('cron_jobs',
    pg_temp.manifest() -> 'cron_jobs' || '[{"name": "never-scheduled", "schedule": "0 4 * * *"}]'))) -> 'missing',
  '["never-scheduled"]', 'an expected job that does not exist: missing');
select cron.schedule('status-extra-job', '0 0 31 2 *', 'select 1');
select is(pg_temp.section('cron', pg_temp.manifest((select jsonb_build_object('cron_jobs',
    jsonb_agg(jsonb_build_object('name', j.jobname, 'schedule', j.schedule)))
    from cron.job as j where j.jobname <> 'status-extra-job'))) -> 'unexpected', '["status-extra-job"]',
  'a job the migrations do not schedule is listed');
select is(pg_temp.section('cron', pg_temp.manifest((select jsonb_build_object('cron_jobs',
    jsonb_agg(jsonb_build_object('name', j.jobname, 'schedule', j.schedule)))
    from cron.job as j where j.jobname <> 'status-extra-job'))) ->> 'status', 'ok', '… without failing');
select cron.alter_job((select jobid from cron.job where jobname = 'status-extra-job'), schedule => '5 0 31 2 *', active => false);
select is(pg_temp.section('cron', pg_temp.manifest(jsonb_build_object('cron_jobs',
    '[{"name": "status-extra-job", "schedule": "0 0 31 2 *"}]'::jsonb))) #> '{schedule_differs,0}',
  '{"name": "status-extra-job", "actual": "5 0 31 2 *", "expected": "0 0 31 2 *"}', 'another schedule: schedule_differs');
select is(pg_temp.section('cron', pg_temp.manifest(jsonb_build_object('cron_jobs',
    '[{"name": "status-extra-job", "schedule": "5 0 31 2 *"}]'::jsonb))) -> 'inactive', '["status-extra-job"]', 'a paused job: inactive');
select is(pg_temp.section('cron', pg_temp.manifest(jsonb_build_object('cron_jobs',
    '[{"name": "status-extra-job", "schedule": "5 0 31 2 *"}]'::jsonb))) ->> 'status', 'fail', '… fail');
select cron.unschedule('status-extra-job');

-- ---- Vault secret names --------------------------------------------------------------------------
select is(pg_temp.section('vault', pg_temp.manifest('{"vault_secrets": ["status_test_secret"]}')) -> 'missing',
  '["status_test_secret"]', 'a secret the scheduled calls need, absent: missing');
select vault.create_secret('not-a-real-value-0123456789', 'status_test_secret');
select is(pg_temp.section('vault', pg_temp.manifest('{"vault_secrets": ["status_test_secret"]}')),
  '{"status": "ok", "missing": [], "present": ["status_test_secret"]}', 'present: names only, never the value');

-- ---- read-only and closed ----------------------------------------------------------------------
select is((select provolatile::text from pg_proc where oid = 'private.database_status(jsonb)'::regprocedure), 's',
  'STABLE: PostgreSQL refuses any write inside it');
select throws_ok($$ select private.database_status('{"migrations": {}}') $$, '22023', null, 'arrays expected');
select ok(not has_function_privilege('anon', 'private.database_status(jsonb)', 'execute')
          and not has_function_privilege('authenticated', 'private.database_status(jsonb)', 'execute')
          and not has_function_privilege('service_role', 'private.database_status(jsonb)', 'execute'),
  'no API role may call private.database_status');
select is(private.database_status(pg_temp.manifest()) ->> 'overall', 'ok', 'back to ok');

select * from finish();
rollback;
