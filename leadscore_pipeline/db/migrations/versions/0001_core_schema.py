"""Core schema: raw deliveries, clean events, scores, history, rules and pipeline state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table raw_deliveries (
            seq          bigint generated always as identity primary key,
            event_id     text not null,
            event_type   text not null,
            event_time   timestamptz not null,
            lead_key     text not null,
            -- 16 lead buckets (scoring.params.LEAD_BUCKETS): the Dagster partitions of the scoring assets.
            lead_bucket  smallint generated always as ((hashtext(lead_key) & 15)::smallint) stored,
            email        text,
            external_id  text,
            name         text,
            company      text,
            source       text not null,
            channel      text not null,
            metadata     jsonb not null default '{}'::jsonb,
            received_at  timestamptz not null
        );
        create index raw_deliveries_event_id on raw_deliveries (event_id);

        -- Raw deliveries are append-only: nothing downstream may change them.
        create function raw_deliveries_append_only() returns trigger language plpgsql as $$
        begin
            raise exception 'raw_deliveries is append-only';
        end $$;
        create trigger raw_deliveries_append_only before update or delete on raw_deliveries
            for each statement execute function raw_deliveries_append_only();

        create table clean_events (
            event_id     text primary key,
            seq          bigint not null unique,
            lead_key     text not null,
            lead_bucket  smallint not null,
            event_type   text not null,
            event_time   timestamptz not null,
            email        text,
            name         text,
            company      text,
            source       text not null,
            duplicates   integer not null default 0,
            conflicts    integer not null default 0
        );
        -- Narrow on purpose: a micro-batch reads whole leads, and every index slows the bulk COPY.
        create index clean_events_lead on clean_events (lead_key);

        create table lead_scores (
            lead_key             text primary key,
            lead_bucket          smallint not null,
            email                text,
            name                 text,
            company              text,
            event_count          integer not null,
            first_event_at       timestamptz not null,
            last_event_at        timestamptz not null,
            score_at_last_event  integer not null,
            rules_version        integer not null,
            -- deduped_through when this row was scored: lets current_scores refresh only what changed.
            scored_seq           bigint not null,
            scored_at            timestamptz not null default now()
        );
        create index lead_scores_bucket on lead_scores (lead_bucket);
        create index lead_scores_scored_seq on lead_scores (scored_seq);
        create index lead_scores_company on lead_scores (company);

        create table score_history (
            lead_key     text not null,
            lead_bucket  smallint not null,
            event_time   timestamptz not null,
            event_id     text not null,
            event_type   text not null,
            points       integer not null,
            decay        integer not null,
            change       integer not null,
            score_after  integer not null,
            primary key (lead_key, event_time, event_id)
        );

        create table current_scores (
            lead_key     text primary key,
            lead_bucket  smallint not null,
            score        integer not null,
            tier         text not null,
            as_of        timestamptz not null
        );
        create index current_scores_rank on current_scores (score desc, lead_key);
        create index current_scores_bucket on current_scores (lead_bucket);

        create table rules (
            event_type  text primary key,
            points      integer not null check (points between -1000 and 1000),
            active      boolean not null default true,
            updated_at  timestamptz not null default now()
        );

        create table pipeline_state (
            id                    smallint primary key default 1 check (id = 1),
            deduped_through       bigint not null default 0,
            scored_through        bigint not null default 0,
            -- through which landing seq the current scores (what the API serves) are up to date
            served_through        bigint not null default 0,
            rules_version         integer not null default 1,
            scoring_fingerprint   text,
            last_microbatch_at    timestamptz,
            last_replay_at        timestamptz,
            last_decay_at         timestamptz
        );
        insert into pipeline_state default values;

        -- Which rules version each bucket's served scores reflect; the minimum is what the board reflects.
        create table bucket_state (
            lead_bucket    smallint primary key,
            rules_version  integer not null default 1,
            updated_at     timestamptz
        );
        insert into bucket_state (lead_bucket) select generate_series(0, 15);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table bucket_state, pipeline_state, rules, current_scores, score_history, lead_scores, clean_events;
        drop table raw_deliveries;
        drop function raw_deliveries_append_only;
        """
    )
