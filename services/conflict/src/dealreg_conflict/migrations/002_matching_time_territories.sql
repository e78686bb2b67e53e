-- Conflict deepened: name matching through blocking keys, locks on them, time (expiry, escalation),
-- exclusive territories and a clock tests can move.

alter table registrations
    add column registrable_domain text,
    add column name_norm          text not null default '',
    add column extended_days      int not null default 0,
    add column decided_at         timestamptz,          -- by the service's clock: when it got its status
    add column expiring_from      timestamptz,          -- approved: when the `expiring` reminder is due
    add column review_due_at      timestamptz,          -- under review: when it escalates
    add column escalated_at       timestamptz,
    add column decided_by         text;                 -- host:pid of the replica that decided it first

-- every lookup for a new registration goes through one of these, never a scan of all registrations
create index registrations_active_by_domain on registrations (registrable_domain)
    where status in ('under_review', 'approved', 'expiring') and registrable_domain is not null;
-- the blocking keys of active registrations' names (matching.name_keys), kept only while they are active:
-- each key names one spelling, so a lookup is a few b-tree probes whatever the number of registrations
-- (unlike trigrams, whose posting lists grow with the table), and the planner knows each key is rare
create table name_keys (
    key             text not null,
    registration_id uuid not null references registrations on delete cascade,
    primary key (key, registration_id)
);
create index name_keys_by_registration on name_keys (registration_id);
-- the sweeper's three questions, each answered from a small partial index
create index registrations_expiring_due on registrations (expiring_from) where status = 'approved';
create index registrations_protection_due on registrations (protected_until) where status in ('approved', 'expiring');
create index registrations_review_due on registrations (review_due_at)
    where status = 'under_review' and escalated_at is null;

create table territories (
    territory_id text primary key,
    partner_id   text not null,
    region       text,
    country      text,
    product_line text not null,
    starts_at    timestamptz not null,
    ends_at      timestamptz not null,
    granted_by   text not null,
    granted_at   timestamptz not null default now(),
    check ((region is null) <> (country is null)),
    check (ends_at > starts_at)
);
create index territories_by_line on territories (product_line, ends_at);

-- tests move the service's clock (DEALREG_CONTROLLABLE_CLOCK=true); production never reads this table
create table clock_offset (
    id        boolean primary key default true check (id),
    offset_s  double precision not null default 0
);
insert into clock_offset default values;

-- Serialize decisions that could be about the same customer: one advisory lock per blocking key (the
-- customer key, the registrable domain, the name's keys within its country), always taken in ascending order
-- so that two transactions never wait for each other in a circle.
create function lock_blocking_keys(keys text[]) returns void language plpgsql as $$
declare
    k bigint;
begin
    for k in select distinct hashtextextended(x, 0) from unnest(keys) x order by 1 loop
        perform pg_advisory_xact_lock(k);
    end loop;
end $$;
