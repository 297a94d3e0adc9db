-- pg_cron runs the scheduled maintenance (purges, billing reconciliation). On hosted Supabase
-- the extension lives in pg_catalog (its objects in schema `cron`) and runs jobs in UTC.
create extension if not exists pg_cron with schema pg_catalog;

grant usage on schema cron to postgres;
grant all privileges on all tables in schema cron to postgres;
