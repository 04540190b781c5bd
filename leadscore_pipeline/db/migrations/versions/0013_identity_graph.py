"""The identity graph (SPEC §3): links between emails and external ids, the lead each joined key resolves to,
and the leads a change of the graph leaves to rescore.

- clean_events.external_id: the sender's id of the event, so the links can be rebuilt from a bucket's clean events.
- identity_links: per (email, external id or null), the clean events carrying both, and the earliest one's time:
  a function of the clean events of the email's bucket, rebuilt with them.
- lead_aliases: each key (an email or `id:` + external id) that resolves to another lead, with both buckets.
- identity_rescores: leads whose events changed by a merge or un-merge, for the next micro-batch to rescore;
  pipeline_state.identity_generation counts the times leads were queued (a fresh run key for the sensor).
- restaged_leads: leads that micro-batch rescored that way (or left without events), for the serving steps: their
  landing seq is not newer than what those steps already served.
- score_history.identity_key / joins: the key an event was sent under, and the keys it joined into the lead.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table clean_events add column external_id text;
        update clean_events c set external_id = r.external_id
        from raw_deliveries r where r.seq = c.seq and r.external_id is not null;

        create table identity_links (
            lead_bucket  smallint not null,
            email        text not null,
            external_id  text,
            events       integer not null,
            first_at     timestamptz not null
        );
        create unique index identity_links_pair on identity_links (email, coalesce(external_id, ''));
        create index identity_links_id on identity_links (external_id) where external_id is not null;
        create index identity_links_bucket on identity_links (lead_bucket);
        insert into identity_links
        select lead_bucket, email, external_id, count(*), min(event_time)
        from clean_events where email is not null group by lead_bucket, email, external_id;

        create table lead_aliases (
            identity_key     text primary key,
            lead_key         text not null,
            identity_bucket  smallint not null,
            lead_bucket      smallint not null
        );
        create index lead_aliases_lead on lead_aliases (lead_key);

        create table identity_rescores (lead_key text primary key);
        alter table pipeline_state add column identity_generation bigint not null default 0;
        create table restaged_leads (
            lead_key  text primary key,
            unserved  boolean not null default true,
            unstated  boolean not null default true
        );
        -- The merge protection the aliases were resolved under: null, or another setting, resolves them all again.
        alter table pipeline_state add column identity_max_emails integer;

        alter table score_history add column identity_key text, add column joins text;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table score_history drop column identity_key, drop column joins;
        alter table pipeline_state drop column identity_max_emails, drop column identity_generation;
        drop table restaged_leads, identity_rescores, lead_aliases, identity_links;
        alter table clean_events drop column external_id;
        """
    )
