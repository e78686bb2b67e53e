-- the latest state notify has seen of each registration and application: a one-click link for a record that
-- has moved on is refused here rather than published.
create table record_states (
    record_id  text primary key,
    kind       text not null check (kind in ('registration', 'application')),
    state      text not null,
    updated_at timestamptz not null default now()
);
