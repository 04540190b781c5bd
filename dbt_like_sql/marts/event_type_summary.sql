-- Per event type: events, leads that did it, points the rules gave, and purchases it came just before (maintained).
-- No CTEs: a view holding a WITH is not flattened into the query that reads it.
select
    totals.event_type,
    totals.events,
    totals.unique_leads,
    totals.points,
    totals.conversions
from {{ ref('event_type_totals') }} as totals
