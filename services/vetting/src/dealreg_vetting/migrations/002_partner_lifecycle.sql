-- the partner lifecycle after approval (keys, suspension), every manager decision once, and registration flags.
alter table partners add column public_keys jsonb not null default '[]';
alter table partners add column keys_updated_at timestamptz;
alter table partners add column status_changed_at timestamptz;
alter table partners add column status_reason text not null default '';

-- partners approved before this migration: their keys are the ones of their application
update partners p set public_keys = a.data -> 'public_keys' from applications a where a.application_id = p.application_id;

alter table applications add column tier text;
alter table applications add column decision_reason text not null default '';

-- a manager's tool may publish the same decision twice (a retry is a new event): the decision id applies once
create table decisions (
    decision_id uuid primary key,
    subject_id  text not null,
    decision    text not null,
    outcome     text not null check (outcome in ('applied', 'refused')),
    detail      text not null default '',
    manager_id  text not null,
    decided_at  timestamptz not null default now()
);

alter table screened_registrations add column flags text[] not null default '{}';
alter table screened_registrations add column detail text not null default '';
