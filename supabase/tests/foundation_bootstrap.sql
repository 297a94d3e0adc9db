-- Foundation: the local bootstrap (scripts/local-supabase/bootstrap.sql) provides what hosted
-- Supabase has before our migrations, with the same names, attributes and signatures.
begin;
select plan(24);

-- Roles and their attributes
select ok(exists(select from pg_roles where rolname = 'anon' and not rolcanlogin), 'anon exists and cannot log in');
select ok(exists(select from pg_roles where rolname = 'authenticated' and not rolcanlogin), 'authenticated exists and cannot log in');
select ok(exists(select from pg_roles where rolname = 'service_role' and not rolcanlogin and rolbypassrls), 'service_role bypasses RLS and cannot log in');
select ok(exists(select from pg_roles where rolname = 'authenticator' and rolcanlogin and not rolinherit), 'authenticator logs in, noinherit');
select ok(pg_has_role('authenticator', 'anon', 'member') and pg_has_role('authenticator', 'authenticated', 'member')
          and pg_has_role('authenticator', 'service_role', 'member'), 'authenticator can switch to the three API roles');
select ok(not exists(select from pg_roles where rolname in ('anon', 'authenticated') and rolbypassrls), 'the user-facing roles never bypass RLS');

-- Schemas and default privileges
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

-- pg_cron preloaded and enabled by migration
select is(current_setting('cron.database_name'), 'postgres', 'pg_cron runs jobs in the postgres database');
select has_function('cron', 'schedule', array['text', 'text', 'text'], 'cron.schedule(job_name, schedule, command)');

-- pg_net: hosted signatures
select has_function('net', 'http_post', array['text', 'jsonb', 'jsonb', 'jsonb', 'integer'], 'net.http_post(url, body, params, headers, timeout_milliseconds)');
select has_function('net', 'http_get', array['text', 'jsonb', 'jsonb', 'integer'], 'net.http_get(url, params, headers, timeout_milliseconds)');
select set_config('test.request_id', net.http_get('http://127.0.0.1:9/x',
  '{"a": "1 2", "b": "x&y", "c": "k=v#f+?", "é t": "Montréal/~ok"}'::jsonb)::text, true);
select is(
  (select url from net.http_request_queue where id = current_setting('test.request_id')::bigint),
  'http://127.0.0.1:9/x?a=1%202&b=x%26y&c=k%3Dv%23f%2B%3F&%C3%A9%20t=Montr%C3%A9al%2F~ok',
  'net.http_get appends params to the URL, percent-encoded as curl does (reserved and non-ASCII bytes)');
select throws_ok(
  $$select net.http_post('http://127.0.0.1:9/x', '{}'::jsonb, '{}'::jsonb, '{"Content-Type": "text/plain"}'::jsonb)$$,
  'Content-Type header must be "application/json"',
  'net.http_post refuses a non-JSON content type, as pg_net does');

-- Vault: same API (plain text locally)
select lives_ok($$select vault.create_secret('local-test-value', 'foundation_test_secret', 'pgTAP')$$, 'vault.create_secret()');
select is((select decrypted_secret from vault.decrypted_secrets where name = 'foundation_test_secret'), 'local-test-value',
  'vault.decrypted_secrets returns the secret by name');

select * from finish();
rollback;
