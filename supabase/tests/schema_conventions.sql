-- Schema conventions as checks: for EVERY table in `public` (the schema the API exposes), read
-- from the catalog, so a table added by a future migration is checked without editing this file:
--   1. RLS is enabled;
--   2. anon has no privilege at all: not on the table, not on a column, not on a sequence the
--      table owns (identity/serial), neither directly nor through PUBLIC;
--   3. the audit trigger is attached (select private.enable_audit('public.<table>') in the
--      migration, beside the grants and RLS), unless the table is in audit_trigger_exemptions
--      below with its reason;
--   4. wherever an `updated_at` column exists, the set_updated_at trigger keeps it honest
--      (BEFORE UPDATE FOR EACH ROW, private.set_updated_at(), on every update).
-- The plan is computed from the catalog: 4 assertions per table, one per exemption, plus the
-- fixed assertions of the last section, which prove the guard's query reports a table that
-- breaks each rule (a throwaway table created and fixed step by step in this transaction).
begin;

-- ---------------------------------------------------------------------------------------------
-- Tables exempt from the audit trigger, and why. Every other rule still applies to them.
-- ---------------------------------------------------------------------------------------------
create temp table audit_trigger_exemptions (
  table_name name primary key,
  reason text not null check (length(reason) >= 40)
);
insert into audit_trigger_exemptions (table_name, reason) values
  ('system_audit_logs',
   'it is the audit trail: private.audit_row_change() writes into it, so a trigger on it would audit its own audit rows without end'),
  ('billing_events',
   'it is itself a ledger: one row per Stripe event with the full payload, kept as received; auditing would copy every payload, and the billing rows each event changes are audited'),
  ('customers',
   'billing: the audit trigger is attached as audit_row_change_outside_stripe_event, with a WHEN guard (20261130030100): it audits every writer but private.apply_stripe_event, which writes one webhook_event audit row per Stripe event holding what it changed'),
  ('subscriptions',
   'billing: the audit trigger is attached as audit_row_change_outside_stripe_event, with a WHEN guard (20261130030100): it audits every writer but private.apply_stripe_event, which writes one webhook_event audit row per Stripe event holding what it changed'),
  ('subscription_items',
   'billing: the audit trigger is attached as audit_row_change_outside_stripe_event, with a WHEN guard (20261130030100): it audits every writer but private.apply_stripe_event, which writes one webhook_event audit row per Stripe event holding what it changed'),
  ('invoices',
   'billing: the audit trigger is attached as audit_row_change_outside_stripe_event, with a WHEN guard (20261130030100): it audits every writer but private.apply_stripe_event, which writes one webhook_event audit row per Stripe event holding what it changed'),
  ('sms_alerts',
   'a log of every SMS (numbers, message text) deleted after 180 days under Loi 25; audit rows hold every column and are kept a year, so auditing would keep the messages past their retention'),
  ('sms_consent_events',
   'it is itself the consent proof (insert-only for the API); its message_body is blanked after 180 days, and an audit row of that update would keep the text for a year');

-- ---------------------------------------------------------------------------------------------
-- The guard: one row per table of `public`, one column per rule.
-- ---------------------------------------------------------------------------------------------
create temp view convention_check as
select
  c.oid::regclass as table_name,
  c.relname,
  c.relrowsecurity as rls_enabled,
  not (
    pg_catalog.has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    or pg_catalog.has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
    -- Any ACL entry for anon or PUBLIC (grantee 0), whatever the privilege (e.g. MAINTAIN, PG 17+).
    or exists (select from pg_catalog.aclexplode(c.relacl) as acl
               where acl.grantee = 0
                  or acl.grantee = (select r.oid from pg_catalog.pg_roles as r where r.rolname = 'anon'))
    -- Sequences the table owns: identity (dependency 'i') and serial / OWNED BY ('a').
    or exists (select from pg_catalog.pg_depend as d
               join pg_catalog.pg_class as s on s.oid = d.objid
               where d.classid = 'pg_catalog.pg_class'::regclass
                 and d.refclassid = 'pg_catalog.pg_class'::regclass
                 and d.refobjid = c.oid
                 and d.deptype in ('a', 'i')
                 -- CASE: the planner may test the privilege before relkind, and it errors on non-sequences.
                 and case when s.relkind = 'S'
                       then pg_catalog.has_sequence_privilege('anon', s.oid, 'USAGE, SELECT, UPDATE')
                       else false
                     end)
  ) as anon_has_nothing,
  -- tgtype bits: 1 ROW, 2 BEFORE, 4 INSERT, 8 DELETE, 16 UPDATE, 64 INSTEAD OF. A trigger that is
  -- disabled (or replica-only), limited to some columns or guarded by WHEN does not count.
  exists (
    select from pg_catalog.pg_trigger as t
    where t.tgrelid = c.oid
      and t.tgfoid = 'private.audit_row_change()'::regprocedure
      and t.tgenabled in ('O', 'A')
      and t.tgtype & (1 | 2 | 64) = 1
      and t.tgtype & (4 | 8 | 16) = (4 | 8 | 16)
      and pg_catalog.cardinality(t.tgattr::int2[]) = 0
      and t.tgqual is null
  ) as audited,
  e.reason as audit_exemption,
  exists (
    select from pg_catalog.pg_attribute as a
    where a.attrelid = c.oid and a.attname = 'updated_at' and a.attnum > 0 and not a.attisdropped
  ) as has_updated_at,
  exists (
    select from pg_catalog.pg_trigger as t
    where t.tgrelid = c.oid
      and t.tgfoid = 'private.set_updated_at()'::regprocedure
      and t.tgenabled in ('O', 'A')
      and t.tgtype & (1 | 2 | 64) = (1 | 2)
      and t.tgtype & 16 = 16
      and pg_catalog.cardinality(t.tgattr::int2[]) = 0
      and t.tgqual is null
  ) as updated_at_trigger
from pg_catalog.pg_class as c
left join audit_trigger_exemptions as e on e.table_name = c.relname
where c.relnamespace = 'public'::regnamespace
  and c.relkind in ('r', 'p');

select plan(
  4 * (select count(*)::int from convention_check)
  + (select count(*)::int from audit_trigger_exemptions)
  + 16
);

-- ---------------------------------------------------------------------------------------------
-- Every table of public (ordered in a subquery so the test numbers follow the output order)
-- ---------------------------------------------------------------------------------------------
select ok(rls_enabled, format('%s: RLS enabled', table_name))
from (select * from convention_check order by relname) as t;

select ok(anon_has_nothing, format('%s: anon has no privilege (table, columns, owned sequences)', table_name))
from (select * from convention_check order by relname) as t;

select ok(
  audited or audit_exemption is not null,
  case when audit_exemption is null
    then format('%s: audit trigger attached (private.enable_audit)', table_name)
    else format('%s: exempt from the audit trigger: %s', table_name, audit_exemption)
  end)
from (select * from convention_check order by relname) as t;

select ok(
  not has_updated_at or updated_at_trigger,
  case when has_updated_at
    then format('%s: updated_at is set by the set_updated_at trigger', table_name)
    else format('%s: no updated_at column', table_name)
  end)
from (select * from convention_check order by relname) as t;

-- An exemption names an existing table that really lacks the trigger: a stale entry (table gone,
-- or audited after all) fails, so the list stays exactly the tables that need it.
select ok(
  exists (select from convention_check as c where c.relname = e.table_name and not c.audited),
  format('exemption %s: the table exists and has no audit trigger', e.table_name))
from (select * from audit_trigger_exemptions order by table_name) as e;

-- ---------------------------------------------------------------------------------------------
-- The guard catches a table that forgets a convention. A throwaway table is created as a
-- migration would create it (hosted default privileges give anon ALL on it and on its identity
-- sequence; granted explicitly as well, so the proof does not depend on them), then fixed one
-- rule at a time. It is not counted in the plan above: the per-table assertions already ran.
-- ---------------------------------------------------------------------------------------------
create table public.convention_probe (
  id bigint generated always as identity primary key,
  note text,
  updated_at timestamptz not null default now()
);
grant all on public.convention_probe to anon;
grant all on sequence public.convention_probe_id_seq to anon;

select results_eq(
  $$ select rls_enabled, anon_has_nothing, audited, audit_exemption is not null, not has_updated_at or updated_at_trigger
     from convention_check where relname = 'convention_probe' $$,
  $$ values (false, false, false, false, false) $$,
  'a new table that forgets every convention fails every rule');

alter table public.convention_probe enable row level security;
select ok((select rls_enabled from convention_check where relname = 'convention_probe'), 'probe: RLS enabled is seen');

revoke all on public.convention_probe from anon;
select ok(not (select anon_has_nothing from convention_check where relname = 'convention_probe'),
  'probe: anon still holding the identity sequence is reported');
revoke all on sequence public.convention_probe_id_seq from anon;
select ok((select anon_has_nothing from convention_check where relname = 'convention_probe'),
  'probe: no privilege left for anon is seen');

grant select (note) on public.convention_probe to anon;
select ok(not (select anon_has_nothing from convention_check where relname = 'convention_probe'),
  'probe: a column privilege for anon is reported');
revoke select (note) on public.convention_probe from anon;

grant select on public.convention_probe to public;
select ok(not (select anon_has_nothing from convention_check where relname = 'convention_probe'),
  'probe: a privilege for PUBLIC (which anon has) is reported');
revoke select on public.convention_probe from public;

create trigger audit_row_change after insert on public.convention_probe
  for each row execute function private.audit_row_change();
select ok(not (select audited from convention_check where relname = 'convention_probe'),
  'probe: an audit trigger on INSERT only does not count');

select private.enable_audit('public.convention_probe');
select ok((select audited from convention_check where relname = 'convention_probe'),
  'probe: private.enable_audit() repairs it into the full audit trigger');

alter table public.convention_probe disable trigger audit_row_change;
select ok(not (select audited from convention_check where relname = 'convention_probe'),
  'probe: a disabled audit trigger does not count');
select private.enable_audit('public.convention_probe');
select is(
  (select count(*)::int from pg_trigger
   where tgrelid = 'public.convention_probe'::regclass and tgfoid = 'private.audit_row_change()'::regprocedure),
  1, 'probe: private.enable_audit() again re-enables the same trigger, never a second one');
select ok((select audited from convention_check where relname = 'convention_probe'),
  'probe: audited again');

create trigger set_updated_at before update of note on public.convention_probe
  for each row execute function private.set_updated_at();
select ok(not (select updated_at_trigger from convention_check where relname = 'convention_probe'),
  'probe: an updated_at trigger limited to some columns does not count');
drop trigger set_updated_at on public.convention_probe;
create trigger set_updated_at after update on public.convention_probe
  for each row execute function private.set_updated_at();
select ok(not (select updated_at_trigger from convention_check where relname = 'convention_probe'),
  'probe: an AFTER updated_at trigger (too late to set the column) does not count');
drop trigger set_updated_at on public.convention_probe;
create trigger set_updated_at before update on public.convention_probe
  for each row execute function private.set_updated_at();

select results_eq(
  $$ select rls_enabled, anon_has_nothing, audited, not has_updated_at or updated_at_trigger
     from convention_check where relname = 'convention_probe' $$,
  $$ values (true, true, true, true) $$,
  'the probe passes every rule once fixed');

-- An exemption covers the audit rule only.
insert into audit_trigger_exemptions (table_name, reason)
  values ('convention_probe', 'throwaway table of this test, exempted to show the exemption covers only the audit rule');
alter table public.convention_probe disable row level security;
select results_eq(
  $$ select rls_enabled, audit_exemption is not null from convention_check where relname = 'convention_probe' $$,
  $$ values (false, true) $$,
  'an exempted table without RLS is still reported');

-- A table without updated_at needs no updated_at trigger.
create table public.convention_probe_no_updated_at (id bigint primary key);
select ok(
  (select not has_updated_at and not updated_at_trigger from convention_check where relname = 'convention_probe_no_updated_at'),
  'a table without updated_at is not asked for the trigger');

select * from finish();
rollback;
