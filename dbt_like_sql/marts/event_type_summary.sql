-- Per event type: events, leads that did it, points the rules gave, and purchases it came just before.
with

stats as (
    select * from {{ ref('lead_event_stats') }}
),

final as (
    select
        stats.event_type,
        sum(stats.events) as events,
        count(*) filter (where stats.events > 0) as unique_leads,
        sum(stats.points) as points,
        sum(stats.conversions) as conversions
    from stats
    group by stats.event_type
)

select * from final
