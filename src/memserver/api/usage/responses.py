"""A project's usage per day."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from memserver.api.kit.wire import Out


class UsageSeries(Out):
    """One value per day of `days`, in order."""

    memories_added: list[int] = Field(description="ADD history entries (imports keep their days).")
    memories_updated: list[int] = Field(description="UPDATE history entries.")
    memories_deleted: list[int] = Field(description="DELETE history entries.")
    searches: list[int | None] = Field(
        description="Searches (v1, v2, v3, MCP); null on days before the server counted them. Approximate: a "
        "process that dies loses its last MEMSERVER_USAGE__FLUSH_INTERVAL_S of counts; in a zone whose offset "
        "is not whole hours, searches fall on the day of their UTC hour."
    )
    llm_calls: list[int] = Field(description="LLM requests answered: adds, exports, profiles, summaries.")
    prompt_tokens: list[int] = Field(description="Prompt tokens the LLM reported.")
    completion_tokens: list[int] = Field(description="Completion tokens the LLM reported.")
    failed_adds: list[int] = Field(description="Adds that ended FAILED.")
    failed_jobs: list[int] = Field(description="Other jobs (exports, profiles, graph syncs) that ended FAILED.")
    failed_deliveries: list[int] = Field(description="Webhook deliveries that ended FAILED.")


class UsageTotals(Out):
    memories_added: int
    memories_updated: int
    memories_deleted: int
    searches: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    failed_adds: int
    failed_jobs: int
    failed_deliveries: int


class Usage(Out):
    """The project's usage per day in a time zone (memserver extension); events count on the day they were
    accepted."""

    from_: str = Field(alias="from", description="The first day (YYYY-MM-DD).")
    to: str = Field(description="The last day (YYYY-MM-DD).")
    tz: str
    days: list[str]
    series: UsageSeries
    totals: UsageTotals
    searches_counted_since: datetime | None = Field(description="When the server began counting searches.")
