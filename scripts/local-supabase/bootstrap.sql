-- Local-only bootstrap: what a hosted Supabase database has before any project migration runs,
-- reproduced on plain PostgreSQL 15 so that supabase/migrations apply here unchanged.
--
-- NEVER copy this into supabase/migrations: on a hosted project these objects already exist and
-- are owned by Supabase. Names, signatures, grants and default privileges follow hosted Supabase
-- (supabase/postgres init scripts, GoTrue's auth functions, pg_net and supabase_vault).
--
-- Applied by scripts/local-supabase/cluster.ts as the superuser supabase_admin, with the psql
-- variable postgres_password (the local password of `postgres`). Everything after it (migrations,
-- seed, tests, functions) runs as the non-superuser `postgres`, as on a hosted project.
--
-- Idempotent: `npm start` and `npm test` may apply it to a cluster that already has it.

\set ON_ERROR_STOP on
set client_min_messages = warning;

-- ---------------------------------------------------------------------------------------------
-- Roles. Run as supabase_admin, the cluster's superuser (initdb -U supabase_admin), as on hosted
-- Supabase. `postgres` is what the project gets: NOT a superuser (supabase/postgres
-- migrations/db/migrations/10000000000000_demote-postgres.sql), owner of the database.
-- ---------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres;
  end if;
  -- The API roles (init-scripts/00000000000000-initial-schema.sql). NOLOGIN: only
  -- `authenticator` (PostgREST) and postgres switch into them.
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_functions_admin') then
    create role supabase_functions_admin login noinherit createrole;
  end if;
  if not exists (select from pg_roles where rolname = 'pgbouncer') then
    create role pgbouncer login;
  end if;
  if not exists (select from pg_roles where rolname = 'dashboard_user') then
    create role dashboard_user nologin createrole createdb replication;
  end if;
end
$$;

-- demote-postgres: LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS. The password is
-- the local one (psql variable set by cluster.ts), never a real one.
alter role postgres with login nosuperuser createdb createrole replication bypassrls
  password :'postgres_password';
alter database postgres owner to postgres;
grant all on database postgres to postgres;

-- API roles INHERIT (20230529180330_alter_api_roles_for_inherit.sql); authenticator stays
-- NOINHERIT: it has no privilege of its own until PostgREST switches role.
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role authenticator noinherit;

grant anon, authenticated, service_role to authenticator;
-- 20230201083204_grant_auth_roles_to_postgres.sql, 20230306081037_grant_pg_monitor_to_postgres.sql,
-- 20240606060239_grant_predefined_roles_to_postgres.sql.
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
-- PostgreSQL 16+: a CREATEROLE role needs ADMIN on a role to grant it; hosted grants it
-- (20250605172253_grant_with_admin_to_postgres_16_and_above.sql). Debian ships 15 here.
do $$
begin
  if current_setting('server_version_num')::int >= 160000 then
    execute 'grant anon, authenticated, service_role to postgres with admin option';
  end if;
end
$$;

-- Timeouts as on hosted Supabase (docs: database/postgres/timeouts): anon 3 s and authenticated
-- 8 s (init-scripts), authenticator 8 s statement and lock timeouts (20221028101028_*,
-- 20231130133139_*), and the global 2 min set in postgresql.conf by cluster.ts. PostgREST applies
-- the per-role ones when it switches role; a direct connection (SUPABASE_DB_URL, postgres) gets the
-- global one.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
alter role supabase_auth_admin set idle_in_transaction_session_timeout = 60000;
-- The dashboard's SQL editor and `psql` as postgres see extensions without qualifying them.
alter role postgres set search_path = "$user", public, extensions;
alter role supabase_admin set search_path = "$user", public, auth, extensions;

-- ---------------------------------------------------------------------------------------------
-- Schemas public and extensions: grants and default privileges
-- ---------------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to postgres with grant option;

create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- 20230224042246_grant_extensions_perms_for_postgres.sql
grant all privileges on all tables in schema extensions to postgres with grant option;
grant all privileges on all routines in schema extensions to postgres with grant option;
grant all privileges on all sequences in schema extensions to postgres with grant option;
alter default privileges in schema extensions grant all on tables to postgres with grant option;
alter default privileges in schema extensions grant all on routines to postgres with grant option;
alter default privileges in schema extensions grant all on sequences to postgres with grant option;

grant usage on schema public to postgres, anon, authenticated, service_role;
grant all on schema public to postgres with grant option;

-- Objects postgres or supabase_admin create in public are granted to the API roles; RLS decides
-- what those roles see. This is why every project table needs RLS enabled.
alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- auth: users table and the JWT accessors, defined as GoTrue defines them
-- ---------------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres, dashboard_user;

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
create index if not exists users_instance_id_idx on auth.users (instance_id);
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
grant all on auth.users to supabase_auth_admin, postgres, dashboard_user;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to public, anon, authenticated, service_role, postgres, dashboard_user;

-- ---------------------------------------------------------------------------------------------
-- Extensions only a superuser may create. On hosted Supabase, supautils intercepts `create
-- extension` run by postgres for these "privileged extensions", creates them as supabase_admin and
-- runs Supabase's after-create script. Locally there is no supautils, so they are created here, as
-- supabase_admin, and the migrations' `create extension if not exists` finds them in place.
-- ---------------------------------------------------------------------------------------------

-- pg_cron: preloaded by the cluster (shared_preload_libraries, cron.database_name = postgres,
-- background workers); in pg_catalog as supautils' extensions_parameter_overrides puts it
-- (docs "cron/install"). Its schema `cron` belongs to supabase_admin.
-- ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql runs once, right after
-- the extension is created: postgres may use the schema and functions and read/clean the run
-- history, but only READ cron.job (jobs are made with cron.schedule(), which writes as the
-- extension owner). Then 20260730000000_revoke_trigger_on_cron_tables_from_postgres.sql: no
-- triggers on the run history.
do $$
begin
  if not exists (select from pg_extension where extname = 'pg_cron') then
    create extension pg_cron with schema pg_catalog;
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all
      on sequences to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all
      on tables to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all
      on functions to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
    revoke trigger on cron.job_run_details from postgres;
  end if;
end
$$;

-- plpgsql_check: `supabase db lint` runs `create extension if not exists plpgsql_check` as
-- postgres (hosted: supautils creates it). In `extensions`, on postgres' search_path.
create extension if not exists plpgsql_check with schema extensions;

-- pg_net: pg_net/pg_net.sql, applied right after this file (also as supabase_admin).

-- ---------------------------------------------------------------------------------------------
-- Vault: supabase/vault 0.3 (sql/supabase_vault--0.3.0.sql) with Supabase's after-create grants
-- (ansible/files/postgresql_extension_custom_scripts/supabase_vault/after-create.sql).
-- LOCALLY THE SECRET IS NOT ENCRYPTED: vault.secrets.secret holds its base64 encoding, where hosted
-- Vault holds base64 ciphertext (libsodium, key outside the database). Code that reads
-- vault.secrets.secret instead of vault.decrypted_secrets.decrypted_secret gets the wrong value
-- here as there. Never put a real secret into a local cluster.
-- ---------------------------------------------------------------------------------------------
create schema if not exists vault;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea default extensions.gen_random_bytes(24),
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
comment on table vault.secrets is 'Local emulation: `secret` is base64 of the plain text, NOT encrypted (hosted Vault encrypts it).';
create unique index if not exists secrets_name_idx on vault.secrets using btree (name) where name is not null;

create or replace view vault.decrypted_secrets as
  select s.id, s.name, s.description, s.secret,
         convert_from(decode(s.secret, 'base64'), 'utf8') as decrypted_secret,
         s.key_id, s.nonce, s.created_at, s.updated_at
  from vault.secrets as s;

-- Same body shape as Vault's: the row is inserted with the secret as given (NOT NULL: a null secret
-- is refused; an explicit null description too), then the stored value is replaced by its
-- encoding. new_key_id is ignored, as in Vault 0.3.
create or replace function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid
language plpgsql security definer
set search_path = ''
as $$
declare
  rec record;
begin
  insert into vault.secrets (secret, name, description)
  values (new_secret, new_name, new_description)
  returning * into rec;
  update vault.secrets as s
     set secret = pg_catalog.encode(pg_catalog.convert_to(rec.secret, 'utf8'), 'base64')
   where s.id = rec.id;
  return rec.id;
end
$$;

-- As Vault 0.3: null arguments keep the current value; new_key_id is ignored; an unknown id
-- updates nothing and raises nothing.
create or replace function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  update vault.secrets as s
     set secret = case when new_secret is null then s.secret
                       else pg_catalog.encode(pg_catalog.convert_to(new_secret, 'utf8'), 'base64') end,
         name = coalesce(new_name, s.name),
         description = coalesce(new_description, s.description),
         updated_at = now()
   where s.id = secret_id;
end
$$;

revoke all on schema vault from public;
revoke all on all tables in schema vault from public;
revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;
grant usage on schema vault to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid),
                          vault.update_secret(uuid, text, text, text, uuid) to postgres with grant option;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
                          vault.update_secret(uuid, text, text, text, uuid) to service_role;

-- ---------------------------------------------------------------------------------------------
-- The supabase_migrations schema is created by `supabase migration up` itself.
-- ---------------------------------------------------------------------------------------------
