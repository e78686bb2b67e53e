-- Every service's exactly-once plumbing: the inbox (events already applied) and the outbox (events to relay).
create table inbox (
    event_id    text primary key,
    topic       text not null,
    received_at timestamptz not null default now()
);

create table outbox (
    id           bigserial primary key,
    topic        text not null,
    key          bytea,
    value        bytea not null,
    headers      jsonb not null,          -- [[name, base64 value], ...]: raw bytes survive, even for the DLQ
    dedupe_key   text unique,             -- set for dead letters: one per source record
    created_at   timestamptz not null default now(),
    published_at timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;

-- wake the relay as soon as a transaction that wrote to the outbox commits
create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify(tg_table_schema || '_outbox', '');
    return null;
end $$;
create trigger outbox_inserted after insert on outbox for each statement execute function outbox_notify();
