-- vetting's own state: applications with their checks, the partners it onboarded, registrations it screened.
create table applications (
    application_id uuid primary key,
    partner_id     text not null unique,
    domain         text not null,
    data           jsonb not null,
    checks         jsonb not null,
    flags          text[] not null,
    recommendation text not null,
    status         text not null check (status in ('pending', 'approved', 'rejected')),
    received_at    timestamptz not null default now(),
    decided_at     timestamptz,
    decided_by     text
);

create table partners (
    partner_id     text primary key,
    application_id uuid not null references applications,
    domain         text not null,
    company_name   text not null,
    tier           text not null,
    region         text not null,
    active         boolean not null,
    approved_at    timestamptz not null default now()
);
create index partners_domain on partners (domain);

create table screened_registrations (
    registration_id uuid primary key,
    partner_id      text not null,
    eligible        boolean not null,
    reason_code     text,
    screened_at     timestamptz not null default now()
);
