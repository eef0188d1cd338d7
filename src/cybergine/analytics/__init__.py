"""Analytics: what the assistants resolve, where they fail, what they cost.

``definitions`` says once what each figure means (SQL over conversations and messages),
``rollups`` keeps hourly aggregates of them, ``service`` answers the API and the
drill-down from both."""
