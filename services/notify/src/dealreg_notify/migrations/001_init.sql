-- notify's own state: its projection of partners' contacts, every notification, every delivery attempt.
create table partners (
    partner_id   text primary key,
    company_name text not null,
    emails       text[] not null,
    webhook_url  text,
    active       boolean not null,
    updated_at   timestamptz not null default now()
);

create table notifications (
    id              bigserial primary key,
    event_id        text not null,
    event_type      text not null,
    recipient       text not null,
    channel         text not null check (channel in ('email', 'webhook')),
    address         text not null,
    subject         text not null,
    body_text       text not null,
    payload         jsonb not null,
    status          text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts        int not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    -- never the same notification twice to the same recipient for the same event
    unique (event_id, recipient, channel, address)
);
create index notifications_due on notifications (next_attempt_at) where status = 'pending';
create index notifications_pending_by_address on notifications (channel, address, id) where status = 'pending';

create table delivery_attempts (
    notification_id bigint not null references notifications,
    attempt         int not null,
    attempted_at    timestamptz not null default now(),
    outcome         text not null check (outcome in ('sent', 'retry', 'failed')),
    error           text,
    primary key (notification_id, attempt)
);
