-- Per company: how many scored leads, and their average and total current score.
with

leads as (
    select * from {{ ref('leaderboard') }}
),

final as (
    select
        leads.company,
        count(*) as leads,
        round(avg(leads.score), 1) as average_score,
        sum(leads.score) as total_score
    from leads
    where leads.company is not null
    group by leads.company
)

select * from final
