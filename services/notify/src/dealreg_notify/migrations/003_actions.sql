-- one-click decisions: every action token used, once; the decision it published is in the outbox.
create table action_tokens (
    token_id    text primary key,
    recipient   text not null,
    kind        text not null check (kind in ('registration', 'application')),
    record_id   text not null,
    action      text not null,
    decision_id uuid not null,
    used_at     timestamptz not null default now()
);
