-- Foundation: the local bootstrap (scripts/local-supabase/bootstrap.sql, pg_net/pg_net.sql)
-- provides what hosted Supabase has before our migrations, with the same names, attributes,
-- signatures and privileges; and this suite runs as hosted runs the project: as the
-- non-superuser `postgres`.
begin;
select plan(47);

-- PostgreSQL 15 lets a member SET ROLE; 16+ needs the membership's SET option.
create function pg_temp.can_set_role(member name, target name) returns boolean
language sql stable
as $$
  select case when current_setting('server_version_num')::int >= 160000
              then pg_has_role(member, target, 'SET')
              else pg_has_role(member, target, 'MEMBER') end
$$;

-- ---------------------------------------------------------------------------------------------
-- Roles and their attributes (supabase/postgres init scripts and migrations)
-- ---------------------------------------------------------------------------------------------
select is(current_user::text, 'postgres', 'the tests run as postgres');
select ok(not (select rolsuper from pg_roles where rolname = current_user), 'postgres is not a superuser (as on hosted Supabase)');
select ok((select rolsuper from pg_roles where rolname = 'supabase_admin'), 'supabase_admin is the superuser');
select is(
  (select format('login=%s createdb=%s createrole=%s replication=%s bypassrls=%s',
                 rolcanlogin, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls)
     from pg_roles where rolname = 'postgres'),
  'login=t createdb=t createrole=t replication=t bypassrls=t',
  'postgres: LOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS (demote-postgres)');
select is((select datdba::regrole::text from pg_database where datname = 'postgres'), 'postgres',
  'postgres owns the postgres database');
select ok(exists(select from pg_roles where rolname = 'anon' and not rolcanlogin and rolinherit), 'anon: NOLOGIN, INHERIT');
select ok(exists(select from pg_roles where rolname = 'authenticated' and not rolcanlogin and rolinherit), 'authenticated: NOLOGIN, INHERIT');
select ok(exists(select from pg_roles where rolname = 'service_role' and not rolcanlogin and rolbypassrls and rolinherit),
  'service_role: NOLOGIN, INHERIT, bypasses RLS');
select ok(exists(select from pg_roles where rolname = 'authenticator' and rolcanlogin and not rolinherit), 'authenticator logs in, noinherit');
select ok(pg_temp.can_set_role('authenticator', 'anon') and pg_temp.can_set_role('authenticator', 'authenticated')
          and pg_temp.can_set_role('authenticator', 'service_role'), 'authenticator can switch to the three API roles');
select ok(pg_temp.can_set_role('postgres', 'anon') and pg_temp.can_set_role('postgres', 'authenticated')
          and pg_temp.can_set_role('postgres', 'service_role'), 'postgres can switch to the three API roles');
select ok(not pg_has_role('authenticator', 'anon', 'USAGE'), 'authenticator holds no API role''s privileges until it switches');
select ok(not exists(select from pg_roles where rolname in ('anon', 'authenticated') and rolbypassrls), 'the user-facing roles never bypass RLS');

-- Timeouts (docs "database/postgres/timeouts"; 20221028101028_*, 20231130133139_*)
select ok((select 'statement_timeout=3s' = any(rolconfig) from pg_roles where rolname = 'anon'), 'anon: statement_timeout 3s');
select ok((select 'statement_timeout=8s' = any(rolconfig) from pg_roles where rolname = 'authenticated'), 'authenticated: statement_timeout 8s');
select ok((select rolconfig @> array['statement_timeout=8s', 'lock_timeout=8s'] from pg_roles where rolname = 'authenticator'),
  'authenticator: statement_timeout and lock_timeout 8s');
select is(current_setting('statement_timeout'), '2min', 'postgres runs under the global 2 min statement timeout');

-- ---------------------------------------------------------------------------------------------
-- Schemas and default privileges
-- ---------------------------------------------------------------------------------------------
select has_schema('auth', 'schema auth');
select has_schema('extensions', 'schema extensions');
select ok(has_schema_privilege('authenticated', 'extensions', 'usage'), 'authenticated may use extensions');
select ok(not has_schema_privilege('anon', 'vault', 'usage'), 'anon has no access to vault');
select ok(exists(select from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace
                 where n.nspname = 'public' and d.defaclobjtype = 'r'
                   and array_to_string(d.defaclacl, ',') like '%authenticated=%'),
          'tables created in public are granted to the API roles by default (RLS decides)');

-- auth
select has_table('auth', 'users', 'auth.users');
select has_function('auth', 'uid', '{}'::name[], 'auth.uid()');
select has_function('auth', 'role', '{}'::name[], 'auth.role()');
select has_function('auth', 'jwt', '{}'::name[], 'auth.jwt()');
select has_function('auth', 'email', '{}'::name[], 'auth.email()');

-- ---------------------------------------------------------------------------------------------
-- pg_cron: created by the superuser in pg_catalog, with Supabase's after-create grants
-- ---------------------------------------------------------------------------------------------
select is(current_setting('cron.database_name'), 'postgres', 'pg_cron runs jobs in the postgres database');
select has_function('cron', 'schedule', array['text', 'text', 'text'], 'cron.schedule(job_name, schedule, command)');
select is((select extnamespace::regnamespace::text || ' / ' || extowner::regrole::text from pg_extension where extname = 'pg_cron'),
  'pg_catalog / supabase_admin', 'pg_cron lives in pg_catalog, created by supabase_admin');
select ok(has_table_privilege('postgres', 'cron.job', 'select') and not has_table_privilege('postgres', 'cron.job', 'insert')
          and not has_table_privilege('postgres', 'cron.job', 'update') and not has_table_privilege('postgres', 'cron.job', 'delete'),
  'postgres only reads cron.job (jobs are changed through cron.schedule/unschedule)');
select ok(not has_table_privilege('postgres', 'cron.job_run_details', 'trigger'),
  'postgres has no TRIGGER on cron.job_run_details');

-- ---------------------------------------------------------------------------------------------
-- pg_net as hosted (0.12+ and Supabase's perms fix)
-- ---------------------------------------------------------------------------------------------
select has_function('net', 'http_post', array['text', 'jsonb', 'jsonb', 'jsonb', 'integer'], 'net.http_post(url, body, params, headers, timeout_milliseconds)');
select has_function('net', 'http_get', array['text', 'jsonb', 'jsonb', 'integer'], 'net.http_get(url, params, headers, timeout_milliseconds)');
select has_function('net', 'http_delete', array['text', 'jsonb', 'jsonb', 'integer', 'jsonb'], 'net.http_delete(url, params, headers, timeout_milliseconds, body)');
select has_function('net', 'http_collect_response', array['bigint', 'boolean'], 'net.http_collect_response(request_id, async)');
select is((select typtype::text || ' ' || typbasetype::regtype::text from pg_type where oid = 'net.http_method'::regtype),
  'd text', 'net.http_method is a domain over text');
select is_empty($$
  select p.oid::regprocedure::text from pg_proc p
   where p.pronamespace = 'net'::regnamespace and p.proname in ('http_get', 'http_post', 'http_delete') and p.prosecdef
$$, 'net.http_get/post/delete are SECURITY INVOKER');
select ok(has_schema_privilege('anon', 'net', 'usage')
          and has_function_privilege('anon', 'net.http_get(text, jsonb, jsonb, integer)', 'execute')
          and has_function_privilege('anon', 'net.http_post(text, jsonb, jsonb, jsonb, integer)', 'execute')
          and has_table_privilege('anon', 'net.http_request_queue', 'insert'),
  'every role, anon included, may queue pg_net requests (granted to PUBLIC, as hosted)');
-- (set_config('test.*') only carries an id to the next statements; no claim, no role.)
select set_config('test.request_id', net.http_get('http://127.0.0.1:9/x',
  '{"a": "1 2", "b": "x&y", "c": "k=v#f+?", "é t": "Montréal/~ok"}'::jsonb)::text, true);
select is(
  (select url from net.http_request_queue where id = current_setting('test.request_id')::bigint),
  'http://127.0.0.1:9/x?a=1%202&b=x%26y&c=k%3Dv%23f%2B%3F&%C3%A9%20t=Montr%C3%A9al%2F~ok',
  'net.http_get appends params to the URL, percent-encoded as curl does (reserved and non-ASCII bytes)');
select throws_ok(
  $$select net.http_post('http://127.0.0.1:9/x', '{}'::jsonb, '{}'::jsonb, '{"content-type": "text/plain"}'::jsonb)$$,
  'Content-Type header must be "application/json"',
  'net.http_post refuses a non-JSON content type, as pg_net does');
select set_config('test.delete_id', net.http_delete('http://127.0.0.1:9/x', body => '{"id": 7}'::jsonb)::text, true);
select is(
  (select convert_from(body, 'UTF8') || ' ' || method from net.http_request_queue
    where id = current_setting('test.delete_id')::bigint),
  '{"id": 7} DELETE', 'net.http_delete queues a body');

-- ---------------------------------------------------------------------------------------------
-- Vault as supabase/vault 0.3 (stored encoded locally, encrypted on hosted)
-- ---------------------------------------------------------------------------------------------
select set_config('test.secret_id', vault.create_secret('local-test-value', 'foundation_test_secret', 'pgTAP')::text, true);
select is((select decrypted_secret from vault.decrypted_secrets where name = 'foundation_test_secret'), 'local-test-value',
  'vault.decrypted_secrets returns the secret by name');
select isnt((select secret from vault.secrets where name = 'foundation_test_secret'), 'local-test-value',
  'vault.secrets.secret does not hold the plain text (read decrypted_secrets)');
select throws_ok($$ select vault.create_secret(null, 'foundation_null_secret') $$, '23502', null,
  'vault.create_secret refuses a null secret');
select vault.update_secret(current_setting('test.secret_id')::uuid, new_key_id => gen_random_uuid());
select is((select format('%s|%s|%s', decrypted_secret, description, key_id) from vault.decrypted_secrets where name = 'foundation_test_secret'),
  'local-test-value|pgTAP|', 'vault.update_secret ignores a new key id and keeps what it is not given');
select vault.update_secret(current_setting('test.secret_id')::uuid, 'local-test-value-2');
select is((select decrypted_secret from vault.decrypted_secrets where name = 'foundation_test_secret'), 'local-test-value-2',
  'vault.update_secret replaces the secret');

select * from finish();
rollback;
