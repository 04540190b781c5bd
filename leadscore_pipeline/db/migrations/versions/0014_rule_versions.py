"""Rule versions (every change of the rule set, immutable), daily limits per rule, and the history's note.

`rule_versions` keeps the whole rule set after each change, what changed and an optional note; version 1 is the
set found here (an existing database) or the seeded defaults (a new one, db.migrate.seed_default_rules).
`rules.max_per_day` is SPEC §4's daily limit; `score_history.note` says why an event scored 0 ("daily limit
reached").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table rules add column max_per_day integer check (max_per_day between 1 and 1000000);
        alter table score_history add column note text;

        create table rule_versions (
            version        integer primary key,
            created_at     timestamptz not null default now(),
            kind           text not null check (kind in ('seed', 'put', 'delete', 'replace', 'restore')),
            -- [{"event_type", "before", "after"}], a rule as {"points", "active", "max_per_day"} or null
            change         jsonb not null,
            note           text,
            restored_from  integer references rule_versions (version),
            -- the whole set after the change: [{"event_type", "points", "active", "max_per_day"}]
            rules          jsonb not null,
            -- pipeline_state.rules_version once this set was current: what the scores report reflecting
            rules_version  integer not null
        );
        create function rule_versions_immutable() returns trigger language plpgsql as $$
        begin
            raise exception 'rule versions are immutable';
        end $$;
        create trigger rule_versions_immutable before update or delete on rule_versions
            for each row execute function rule_versions_immutable();

        insert into rule_versions (version, kind, change, rules, rules_version)
        select 1, 'seed',
            -- from no set to this one: every rule added
            jsonb_agg(jsonb_build_object('event_type', event_type, 'before', null, 'after',
                                         jsonb_build_object('points', points, 'active', active,
                                                            'max_per_day', max_per_day)) order by event_type),
            jsonb_agg(jsonb_build_object('event_type', event_type, 'points', points, 'active', active,
                                         'max_per_day', max_per_day) order by event_type),
            (select rules_version from pipeline_state)
        from rules
        having count(*) > 0;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table rule_versions;
        drop function rule_versions_immutable();
        alter table score_history drop column note;
        alter table rules drop column max_per_day;
        """
    )
