-- Events per UTC day and event type over all lead buckets: what the trends read.
with

counts as (
    select * from {{ ref('daily_event_counts') }}
),

final as (
    select
        counts.day,
        counts.event_type,
        sum(counts.events) as events
    from counts
    group by counts.day, counts.event_type
)

select * from final
