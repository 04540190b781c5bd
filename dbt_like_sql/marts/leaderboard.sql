-- Every scored lead with its profile, current (decayed) score and tier: the one serving table every lead read uses.
-- No CTEs here: Postgres does not flatten a view holding a WITH into the query, so its indexes would not serve
-- the order by and filters of the API's reads (a seq scan and sort of every lead instead).
select
    current.lead_key,
    current.lead_bucket,
    current.email,
    current.name,
    current.company,
    current.score,
    current.tier,
    current.as_of,
    current.score_at_last_event,
    current.event_count,
    current.first_event_at,
    current.last_event_at,
    current.rules_version,
    current.previous_score,
    current.change_id,
    current.search_text
from {{ ref('current_scores') }} as current
