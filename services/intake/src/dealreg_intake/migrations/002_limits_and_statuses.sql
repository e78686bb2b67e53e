-- What the flood protection needs: each registration's last known status (from dealreg.registrations.status.v1,
-- so capacity counts only the active ones) and a token bucket per partner for the submission rate.
alter table registrations
    add column status    text not null default 'received',
    add column active    boolean not null default true,
    add column status_at timestamptz;
create index registrations_active_per_partner on registrations (partner_id) where active;

create table submission_buckets (
    partner_id  text primary key,
    tokens      double precision not null,   -- submissions the partner may still send right now
    refilled_at timestamptz not null
);
