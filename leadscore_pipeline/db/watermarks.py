"""The pipeline's watermarks (pipeline_state): the landing seq through which each micro-batch step is done."""

WATERMARKS = ("deduped_through", "counted_through", "scored_through", "served_through", "stats_through")
