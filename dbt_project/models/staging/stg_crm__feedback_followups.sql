{{ config(**cx_staging_config(['followup_id'])) }}
-- One row per follow-up attempt after an unhappy survey answer (crm.feedback_followups, contract
-- version 2): who called back whom, through which channel, when, and with what outcome. Attempts are
-- immutable events; a resent one is the same record.
with current_version as (
    {{ current_version(source('crm', 'feedback_followups'), ['followup_id']) }}
)

select
    followup_id,
    response_id,
    customer_id,
    agent_id,
    channel,
    contacted_at,
    outcome,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
