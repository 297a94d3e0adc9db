-- private.database_status(p jsonb): what the guide's `/api/db/init` check was for, read-only: is
-- the database what this commit's migrations build? Called by the `db-status` function (service
-- only) with the manifest `npm run gen:types` embedded in its code
-- (supabase/functions/_shared/schema-manifest.generated.ts), since a deployed function cannot read
-- supabase/migrations. It only reads: STABLE (PostgreSQL refuses any write in it) and the function
-- runs it in a READ ONLY transaction; nothing is ever created at request time.
--
-- Input: { "migrations": [{version, name}], "schemas": [name], "tables": [name],
--          "cron_jobs": [{name, schedule}], "vault_secrets": [name] }
-- Output: one section per question, each with "status": ok | fail, and "overall": ok | degraded.
--   schemas     our schemas exist (public, private, dashboard)
--   tables      every table of the manifest exists in public; one the manifest does not know is drift
--   rls         RLS is enabled on every table of public (whatever the manifest says)
--   migrations  supabase_migrations.schema_migrations against the manifest: missing (deployed code
--               expects them, the database lacks them: `supabase db push`), unexpected (applied but
--               unknown to the deployed functions: they come from another commit), renamed
--   cron        every job of the manifest exists, active, with its schedule; others are listed
--               (not a failure: an operator may schedule one by hand)
--   vault       the named Vault secrets exist (names only: values are never read)
--   extensions  installed extensions and versions (information)
create function private.database_status(p jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_expected_migrations jsonb := coalesce(p -> 'migrations', '[]'::jsonb);
  v_expected_schemas jsonb := coalesce(p -> 'schemas', '[]'::jsonb);
  v_expected_tables jsonb := coalesce(p -> 'tables', '[]'::jsonb);
  v_expected_jobs jsonb := coalesce(p -> 'cron_jobs', '[]'::jsonb);
  v_vault_names jsonb := coalesce(p -> 'vault_secrets', '[]'::jsonb);
  v_history boolean := to_regclass('supabase_migrations.schema_migrations') is not null;
  v_applied jsonb := '[]'::jsonb;
  v_sections jsonb;
  v_schemas jsonb;
  v_tables jsonb;
  v_rls jsonb;
  v_migrations jsonb;
  v_cron jsonb;
  v_vault jsonb;
begin
  if jsonb_typeof(p) is distinct from 'object'
     or jsonb_typeof(v_expected_migrations) <> 'array' or jsonb_typeof(v_expected_schemas) <> 'array'
     or jsonb_typeof(v_expected_tables) <> 'array' or jsonb_typeof(v_expected_jobs) <> 'array'
     or jsonb_typeof(v_vault_names) <> 'array' then
    raise exception 'database_status: p must be an object of arrays' using errcode = 'invalid_parameter_value';
  end if;

  -- ---- schemas -----------------------------------------------------------------------------------
  select jsonb_build_object(
           'expected', v_expected_schemas,
           'missing', coalesce(jsonb_agg(s.name order by s.name) filter (where n.oid is null), '[]'::jsonb))
    into v_schemas
    from jsonb_array_elements_text(v_expected_schemas) as s (name)
    left join pg_catalog.pg_namespace as n on n.nspname = s.name;

  -- ---- tables of public and RLS ----------------------------------------------------------------
  with actual as (
    select c.relname::text as name, c.relrowsecurity as rls,
           (select count(*) from pg_catalog.pg_policy as pol where pol.polrelid = c.oid) as policies
      from pg_catalog.pg_class as c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
  ), expected as (
    select t.name from jsonb_array_elements_text(v_expected_tables) as t (name)
  )
  select
    jsonb_build_object(
      'expected', (select count(*) from expected),
      'present', (select count(*) from actual),
      'missing', coalesce((select jsonb_agg(e.name order by e.name) from expected as e
                            where not exists (select from actual as a where a.name = e.name)), '[]'::jsonb),
      'unexpected', coalesce((select jsonb_agg(a.name order by a.name) from actual as a
                               where not exists (select from expected as e where e.name = a.name)), '[]'::jsonb)),
    jsonb_build_object(
      'tables', coalesce((select jsonb_agg(jsonb_build_object('name', a.name, 'rls', a.rls, 'policies', a.policies)
                                           order by a.name) from actual as a), '[]'::jsonb),
      'without_rls', coalesce((select jsonb_agg(a.name order by a.name) from actual as a where not a.rls), '[]'::jsonb))
    into v_tables, v_rls;

  -- ---- migrations --------------------------------------------------------------------------------
  if v_history then
    select coalesce(jsonb_agg(jsonb_build_object('version', m.version, 'name', m.name) order by m.version), '[]'::jsonb)
      into v_applied
      from supabase_migrations.schema_migrations as m;
  end if;
  with expected as (
    select e ->> 'version' as version, e ->> 'name' as name from jsonb_array_elements(v_expected_migrations) as e
  ), applied as (
    select e ->> 'version' as version, e ->> 'name' as name from jsonb_array_elements(v_applied) as e
  )
  select jsonb_build_object(
    'history_table', v_history,
    'deployed', (select count(*) from expected),
    'applied', (select count(*) from applied),
    'last_applied', (select jsonb_build_object('version', a.version, 'name', a.name) from applied as a
                      order by a.version desc limit 1),
    'missing', coalesce((select jsonb_agg(jsonb_build_object('version', e.version, 'name', e.name) order by e.version)
                           from expected as e where not exists (select from applied as a where a.version = e.version)),
                        '[]'::jsonb),
    'unexpected', coalesce((select jsonb_agg(jsonb_build_object('version', a.version, 'name', a.name) order by a.version)
                              from applied as a where not exists (select from expected as e where e.version = a.version)),
                           '[]'::jsonb),
    'renamed', coalesce((select jsonb_agg(jsonb_build_object('version', e.version, 'deployed', e.name, 'applied', a.name)
                                          order by e.version)
                           from expected as e join applied as a on a.version = e.version
                          where a.name is distinct from e.name), '[]'::jsonb))
    into v_migrations;

  -- ---- pg_cron jobs ------------------------------------------------------------------------------
  with expected as (
    select e ->> 'name' as name, e ->> 'schedule' as schedule from jsonb_array_elements(v_expected_jobs) as e
  ), actual as (
    select j.jobname::text as name, j.schedule, j.active from cron.job as j where j.jobname is not null
  )
  select jsonb_build_object(
    'expected', (select count(*) from expected),
    'jobs', coalesce((select jsonb_agg(jsonb_build_object('name', a.name, 'schedule', a.schedule, 'active', a.active,
                                                          'expected', exists (select from expected as e where e.name = a.name))
                                       order by a.name) from actual as a), '[]'::jsonb),
    'missing', coalesce((select jsonb_agg(e.name order by e.name) from expected as e
                          where not exists (select from actual as a where a.name = e.name)), '[]'::jsonb),
    'schedule_differs', coalesce((select jsonb_agg(jsonb_build_object('name', e.name, 'expected', e.schedule, 'actual', a.schedule)
                                                   order by e.name)
                                    from expected as e join actual as a on a.name = e.name
                                   where a.schedule is distinct from e.schedule), '[]'::jsonb),
    'inactive', coalesce((select jsonb_agg(e.name order by e.name) from expected as e join actual as a on a.name = e.name
                           where not a.active), '[]'::jsonb),
    'unexpected', coalesce((select jsonb_agg(a.name order by a.name) from actual as a
                             where not exists (select from expected as e where e.name = a.name)), '[]'::jsonb))
    into v_cron;

  -- ---- Vault: the secrets the scheduled calls read (names only) ----------------------------------
  if to_regclass('vault.secrets') is not null then
    select jsonb_build_object(
             'present', coalesce(jsonb_agg(n.name order by n.name) filter (where exists (
                          select from vault.secrets as s where s.name = n.name)), '[]'::jsonb),
             'missing', coalesce(jsonb_agg(n.name order by n.name) filter (where not exists (
                          select from vault.secrets as s where s.name = n.name)), '[]'::jsonb))
      into v_vault
      from jsonb_array_elements_text(v_vault_names) as n (name);
  else
    v_vault := jsonb_build_object('present', '[]'::jsonb, 'missing', v_vault_names);
  end if;

  v_sections := jsonb_build_object(
    'schemas', v_schemas || jsonb_build_object('status',
      case when jsonb_array_length(v_schemas -> 'missing') = 0 then 'ok' else 'fail' end),
    'tables', v_tables || jsonb_build_object('status',
      case when jsonb_array_length(v_tables -> 'missing') = 0 and jsonb_array_length(v_tables -> 'unexpected') = 0
           then 'ok' else 'fail' end),
    'rls', v_rls || jsonb_build_object('status',
      case when jsonb_array_length(v_rls -> 'without_rls') = 0 then 'ok' else 'fail' end),
    'migrations', v_migrations || jsonb_build_object('status',
      case when v_history and jsonb_array_length(v_migrations -> 'missing') = 0
                and jsonb_array_length(v_migrations -> 'unexpected') = 0
                and jsonb_array_length(v_migrations -> 'renamed') = 0 then 'ok' else 'fail' end),
    'cron', v_cron || jsonb_build_object('status',
      case when jsonb_array_length(v_cron -> 'missing') = 0 and jsonb_array_length(v_cron -> 'schedule_differs') = 0
                and jsonb_array_length(v_cron -> 'inactive') = 0 then 'ok' else 'fail' end),
    'vault', v_vault || jsonb_build_object('status',
      case when jsonb_array_length(v_vault -> 'missing') = 0 then 'ok' else 'fail' end)
  );

  return jsonb_build_object(
    'overall', case when exists (select from jsonb_each(v_sections) as s where s.value ->> 'status' = 'fail')
                    then 'degraded' else 'ok' end,
    'checked_at', now(),
    'extensions', (select coalesce(jsonb_object_agg(e.extname, e.extversion order by e.extname), '{}'::jsonb)
                     from pg_catalog.pg_extension as e)
  ) || v_sections;
end
$$;

comment on function private.database_status(jsonb) is
  'Read-only check of the database against a schema manifest (migrations, schemas, public tables, pg_cron jobs, Vault secret names): missing/unexpected migrations, RLS on every public table, cron jobs present/active/scheduled as expected, overall ok|degraded. Called by the db-status function (service only).';

revoke all on function private.database_status(jsonb) from public, anon, authenticated, service_role;
