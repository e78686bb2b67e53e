-- routing by region, HTML bodies, digests held per recipient, and leases fenced by a token.
alter table partners add column region text;

alter table notifications add column body_html text not null default '';
alter table notifications add column digest text not null default 'none' check (digest in ('none', 'hourly', 'daily'));
-- the digest notification that carried this one ('digested')
alter table notifications add column digest_id bigint references notifications;
-- only the holder of the current lease may record the outcome of an attempt
alter table notifications add column lease_token uuid;

alter table notifications drop constraint notifications_status_check;
alter table notifications add constraint notifications_status_check
    check (status in ('pending', 'sent', 'failed', 'held', 'digested'));

create index notifications_held on notifications (recipient, address, id) where status = 'held';
create index notifications_failed on notifications (id) where status = 'failed';
