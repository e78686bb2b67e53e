-- conflict's own state: every vetted registration with its status, and the opportunities created.
create table registrations (
    registration_id uuid primary key,
    partner_id      text not null,
    customer_key    text not null,
    company_name    text not null,
    country         text not null,
    product_lines   text[] not null,
    region          text not null,
    status          text not null check (status in ('under_review', 'approved', 'rejected', 'expiring', 'expired')),
    reason_code     text,
    protected_until timestamptz,
    vetted_at       timestamptz not null default now(),
    data            jsonb not null
);
-- candidates are found through this index, never by scanning all registrations
create index registrations_active_by_customer on registrations (customer_key)
    where status in ('under_review', 'approved', 'expiring');

create table opportunities (
    opportunity_id  uuid primary key,
    registration_id uuid not null unique references registrations,
    customer_key    text not null,
    created_at      timestamptz not null default now()
);
