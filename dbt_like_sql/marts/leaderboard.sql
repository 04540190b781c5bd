-- Every scored lead with its profile, current (decayed) score and tier: what the leaderboard and lead pages read.
with

scores as (
    select * from {{ ref('lead_scores') }}
),

current as (
    select * from {{ ref('current_scores') }}
),

final as (
    select
        scores.lead_key,
        scores.lead_bucket,
        scores.email,
        scores.name,
        scores.company,
        current.score,
        current.tier,
        current.as_of,
        scores.score_at_last_event,
        scores.event_count,
        scores.first_event_at,
        scores.last_event_at,
        scores.rules_version
    from scores
    inner join current on current.lead_key = scores.lead_key
)

select * from final
