-- Local-only pg_net (not packaged for Debian): pg_net's SQL side, applied by the local stack as
-- supabase_admin right after bootstrap.sql; its background worker is ./worker.ts (run by the
-- functions gateway).
--
-- NEVER copy this into supabase/migrations: on a hosted project pg_net is an extension that
-- Supabase installs. Idempotent.
--
-- As hosted Supabase has it (pg_net 0.12+, sql/pg_net.sql and sql/pg_net--0.11.0--0.12.0.sql;
-- supabase/postgres 20250220051611_pg_net_perms_fix.sql):
--   * net.http_get / http_post / http_delete are SECURITY INVOKER; the schema `net`, its tables and
--     sequences are granted to PUBLIC, and so are the functions (EXECUTE by default, plus ALL on
--     http_get/http_post from Supabase's perms fix). ANY role, anon included, may queue a request
--     and read the queue and the responses. Nothing sensitive may depend on pg_net privileges:
--     our own schema keeps API roles away from what matters (net is not an exposed API schema).
--   * net.http_method is a text domain (get/post/delete, any case); http_delete takes a body;
--     net.http_collect_response exists (deprecated upstream).
-- What differs, by necessity: pg_net's C helpers (_urlencode_string, _encode_url_with_params_array,
-- wake) are SQL here; wake() is a NOTIFY that PostgreSQL delivers only on commit, to the local
-- worker, which sends each committed request once and writes net._http_response, as pg_net's
-- background worker does. A rolled-back request never leaves the database.

\set ON_ERROR_STOP on
set client_min_messages = warning;

create schema if not exists net;

do $$
begin
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'net' and t.typname = 'http_method') then
    create domain net.http_method as text
      check (value ilike 'get' or value ilike 'post' or value ilike 'delete');
  end if;
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'net' and t.typname = 'request_status') then
    create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
  end if;
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'net' and t.typname = 'http_response') then
    create type net.http_response as (status_code integer, headers jsonb, body text);
  end if;
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'net' and t.typname = 'http_response_result') then
    create type net.http_response_result as (status net.request_status, message text, response net.http_response);
  end if;
end
$$;

-- Pending requests (pg_net: no primary key; the local worker claims by id, hence the index).
create unlogged table if not exists net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds integer not null
);
create index if not exists http_request_queue_id_idx on net.http_request_queue (id);

create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);

-- pg_net's C net.wake() signals its worker; the local worker LISTENs on this channel. A NOTIFY is
-- delivered only when the transaction commits.
create or replace function net.wake() returns void
language sql
as $$
  select pg_catalog.pg_notify('net_http_request_queue', '')
$$;

-- curl_easy_escape(): every byte outside RFC 3986's unreserved set is percent-encoded.
create or replace function net._urlencode_string(string varchar) returns text
language sql immutable strict
as $$
  select coalesce(string_agg(
    case when ch ~ '^[A-Za-z0-9._~-]$' then ch
         else pg_catalog.upper(pg_catalog.regexp_replace(
                pg_catalog.encode(pg_catalog.convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
    end, '' order by position), '')
  from pg_catalog.regexp_split_to_table(string::text, '') with ordinality as chars (ch, position)
$$;

-- curl_url() with CURLU_APPENDQUERY: each already-encoded "k=v" is appended with ? or &.
create or replace function net._encode_url_with_params_array(url text, params_array text[]) returns text
language sql immutable strict
as $$
  select url || coalesce(
    (select case when strpos(url, '?') > 0 then '&' else '?' end || string_agg(p, '&' order by i)
       from unnest(params_array) with ordinality as a (p, i) where p is not null),
    '')
$$;

-- Blocks until the response of request_id is recorded.
create or replace function net._await_response(request_id bigint) returns bool
language plpgsql parallel unsafe
as $$
declare
  rec net._http_response;
begin
  while rec is null loop
    select * into rec from net._http_response where id = request_id;
    if rec is null then
      perform pg_sleep(0.05);
    end if;
  end loop;
  return true;
end
$$;

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile parallel unsafe
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile parallel unsafe
as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  select header_value into content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as r (header_name, header_value)
   where lower(header_name) = 'content-type'
   limit 1;

  -- Headers given without a content type get JSON's; any other content type is refused.
  if content_type is null then
    select headers || '{"Content-Type": "application/json"}'::jsonb into headers;
  end if;
  if content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

-- pg_net 0.15 replaced http_delete(text, jsonb, jsonb, integer) by this one, with a body.
drop function if exists net.http_delete(text, jsonb, jsonb, integer);
create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
) returns bigint
language plpgsql volatile parallel unsafe
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create or replace function net._http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql parallel unsafe
as $$
declare
  rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select * into rec from net._http_response where id = request_id;

  if rec is null or rec.error_msg is not null then
    -- Still in flight, unknown, or failed: pg_net cannot tell the first two apart either.
    return ('ERROR', coalesce(rec.error_msg, 'request matching request_id not found'), null)::net.http_response_result;
  end if;

  return ('SUCCESS', 'ok', (rec.status_code, rec.headers, rec.content)::net.http_response)::net.http_response_result;
end
$$;

-- Deprecated upstream, and its upstream body ends in a bare SELECT, so calling it raises "query
-- has no destination for result data" on hosted: the same body here fails the same way. Use
-- net._http_collect_response() or read net._http_response.
create or replace function net.http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql parallel unsafe
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  select net._http_collect_response(request_id, async);
end
$$;

-- pg_net 0.12+: everything to PUBLIC (functions keep PostgreSQL's default EXECUTE for PUBLIC).
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
-- Supabase's event trigger grant_pg_net_access() and 20250220051611_pg_net_perms_fix.sql.
grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
grant all on function net.http_get(text, jsonb, jsonb, integer) to public;
grant all on function net.http_post(text, jsonb, jsonb, jsonb, integer) to public;
