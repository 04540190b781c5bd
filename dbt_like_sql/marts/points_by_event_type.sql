-- Per lead and event type: how many events and how many points they earned, for the lead page.
with

history as (
    select * from {{ ref('score_history') }}
),

final as (
    select
        history.lead_key,
        history.event_type,
        count(*) as events,
        sum(history.points) as points,
        sum(history.change) as score_change
    from history
    group by history.lead_key, history.event_type
)

select * from final
