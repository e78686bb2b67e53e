-- intake's own state: its projection of partners (from dealreg.partners.v1) and the registrations it let in.
create table partners (
    partner_id text primary key,
    active     boolean not null,
    tier       text,
    region     text,
    updated_at timestamptz not null default now()
);

create table partner_keys (
    partner_id text not null references partners on delete cascade,
    key_id     text not null,
    public_key text not null,
    primary key (partner_id, key_id)
);

create table registrations (
    registration_id uuid primary key,
    partner_id      text not null,
    content_sha256  text not null,
    customer_key    text not null,
    region          text not null,
    received_at     timestamptz not null,
    data            jsonb not null
);
create index registrations_partner on registrations (partner_id, received_at);

-- every answer that was a rejection, for support and audit (nothing of these goes to later stages)
create table rejections (
    id              bigserial primary key,
    event_id        text not null,
    registration_id uuid,
    partner_id      text,
    reason_code     text not null,
    detail          jsonb not null,
    rejected_at     timestamptz not null default now()
);
