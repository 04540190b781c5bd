-- Per company: how many scored leads, and their average and total current score (from the maintained company_totals).
-- No CTEs: a view holding a WITH is not flattened, and the top-N read must use company_totals_rank.
select
    totals.company,
    totals.leads,
    round(totals.total_score::numeric / totals.leads, 1) as average_score,
    totals.total_score
from {{ ref('company_totals') }} as totals
where totals.leads > 0
