-- marts.kpi_experience_daily (full refresh, every date), hand-written for DuckDB straight from the raw
-- Parquet zone: the reference the dbt build is benchmarked against (benchmarks/handwritten.py).
-- Placeholders, replaced as plain text: {{raw}} (raw zone, no trailing slash), {{as_of}} (YYYY-MM-DD:
-- only drops with business_date <= as_of count, and only KPI dates <= as_of).
-- Same rules as the dbt models (current version per key, identity resolution, segment and persona as of
-- the KPI date, KPI definitions and statistics of dbt_project/macros/kpi.sql), but only the rows and
-- columns this mart needs.
create or replace table kpi_experience_daily as
with
-- every delivered CRM version up to as_of, read once: the current profiles and their versions by date below
crm_delivered as (
    select
        customer_id, segment, persona, created_at, email, country, phone, updated_at,
        _business_date, _extracted_at, _source_line
    from read_parquet('{{raw}}/crm/customers/*/data.parquet', union_by_name = true, hive_partitioning = false)
    where _business_date <= date '{{as_of}}'
),

-- current version of each key among the drops up to as_of: newest version, drop, extract, line
crm as (
    select
        customer_id, created_at,
        nullif(lower(trim(email)), '') as email_norm,
        country,
        replace(replace(replace(replace(phone, ' ', ''), '.', ''), '-', ''), '/', '') as phone_digits
    from crm_delivered
    qualify row_number() over (
        partition by customer_id order by updated_at desc, _business_date desc, _extracted_at desc, _source_line desc
    ) = 1
),

crm_phone as (
    select
        *,
        case
            when phone_digits like '+%' then phone_digits
            when phone_digits like '00%' then '+' || right(phone_digits, length(phone_digits) - 2)
            when phone_digits like '0%' then '+' || case country
                when 'FR' then '33' when 'BE' then '32' when 'CH' then '41' when 'GB' then '44' when 'DE' then '49'
                when 'ES' then '34' when 'IT' then '39' when 'NL' then '31' when 'LU' then '352'
            end || right(phone_digits, length(phone_digits) - 1)
        end as phone_e164
    from crm
),

-- identity: CRM profiles sharing a phone are one person (the first created profile); an e-mail
-- matching CRM profiles is the lowest such person; a CRM id not in the CRM, or an e-mail alone, has
-- no profile. Erasure keeps segment and persona, and matching uses the e-mail and phone as delivered.
crm_person as (
    select
        customer_id,
        email_norm,
        first_value(customer_id) over (
            partition by phone_e164, case when phone_e164 is null then customer_id end
            order by created_at, customer_id
        ) as person_crm_id
    from crm_phone
),

profile as (
    -- identifier as the facts name their customer ('crm:<id>' or 'email:<address>') -> the person's CRM profile
    select 'crm:' || p.customer_id as identifier, c.customer_id as person_crm_id
    from crm_person as p
    inner join crm as c on c.customer_id = coalesce(p.person_crm_id, p.customer_id)
    union all
    select 'email:' || e.email_norm, c.customer_id
    from (
        select email_norm, min(person_crm_id) as person_crm_id
        from crm_person where email_norm is not null group by email_norm
    ) as e
    inner join crm as c on c.customer_id = e.person_crm_id
),

-- segment and persona of each CRM profile by UTC date: the day's last version holds for the whole day, until
-- the day of the next version; the first known version holds for every date before it too
crm_versions as (
    select
        customer_id, segment, persona,
        case when row_number() over (partition by customer_id order by version_date) > 1 then version_date end
            as valid_from_date,
        lead(version_date) over (partition by customer_id order by version_date) as valid_to_date
    from (
        select customer_id, segment, persona, cast(timezone('UTC', updated_at) as date) as version_date
        from crm_delivered
        qualify row_number() over (
            partition by customer_id, cast(timezone('UTC', updated_at) as date)
            order by updated_at desc, _business_date desc, _extracted_at desc, _source_line desc
        ) = 1
    ) as versions
),

responses as (
    select
        cast(timezone('UTC', r.responded_at) as date) as kpi_date, r.survey_type, r.touchpoint, r.score,
        c.person_crm_id
    from (
        select
            responded_at, survey_type, touchpoint, score,
            case
                when customer_ref like '%@%' then 'email:' || nullif(lower(trim(customer_ref)), '')
                else 'crm:' || nullif(trim(customer_ref), '')
            end as identifier
        from read_parquet('{{raw}}/survey/responses/*/data.parquet', union_by_name = true, hive_partitioning = false)
        where _business_date <= date '{{as_of}}'
        qualify row_number() over (
            partition by response_id order by _business_date desc, _extracted_at desc, _source_line desc
        ) = 1
    ) as r
    left join profile as c on c.identifier = r.identifier
),

cases as (
    select
        s.channel, s.opened_at, s.first_response_at, s.resolved_at,
        s.status in ('solved', 'closed') as is_resolved,
        s.status in ('solved', 'closed') and s.customer_contacts = 1 and s.reopened_count = 0 as is_fcr,
        c.person_crm_id
    from (
        select customer_id, channel, opened_at, first_response_at, resolved_at, status, customer_contacts,
               reopened_count
        from read_parquet('{{raw}}/crm/support_cases/*/data.parquet', union_by_name = true, hive_partitioning = false)
        where _business_date <= date '{{as_of}}'
        qualify row_number() over (
            partition by case_id order by updated_at desc, _business_date desc, _extracted_at desc, _source_line desc
        ) = 1
    ) as s
    left join profile as c on c.identifier = 'crm:' || s.customer_id
),

orders as (
    select o.order_id, o.sales_channel, o.promised_delivery_date, c.person_crm_id
    from (
        select
            order_id, sales_channel, promised_delivery_date,
            case
                when crm_customer_id is not null then 'crm:' || crm_customer_id
                else 'email:' || nullif(lower(trim(email)), '')
            end as identifier
        from read_parquet('{{raw}}/erp/orders/*/data.parquet', union_by_name = true, hive_partitioning = false)
        where _business_date <= date '{{as_of}}'
        qualify row_number() over (
            partition by order_id order by updated_ts desc, _business_date desc, _extracted_at desc, _source_line desc
        ) = 1
    ) as o
    left join profile as c on c.identifier = o.identifier
),

order_lines as (
    select order_id, line_no, quantity
    from read_parquet('{{raw}}/erp/order_lines/*/data.parquet', union_by_name = true, hive_partitioning = false)
    where _business_date <= date '{{as_of}}'
    qualify row_number() over (
        partition by order_id, line_no order by _business_date desc, _extracted_at desc, _source_line desc
    ) = 1
),

shipments as (
    select shipment_id, order_id, line_no, quantity, status, delivered_ts
    from read_parquet('{{raw}}/erp/shipments/*/data.parquet', union_by_name = true, hive_partitioning = false)
    where _business_date <= date '{{as_of}}'
    qualify row_number() over (
        partition by shipment_id order by updated_ts desc, _business_date desc, _extracted_at desc, _source_line desc
    ) = 1
),

-- an order is delivered when every line has shipments and all of them are delivered; in full when
-- every line's delivered units reach its quantity; dated by its last delivery
line_delivery as (
    select
        l.order_id,
        count(s.shipment_id) > 0
            and sum(case when s.status <> 'delivered' then 1 else 0 end) = 0 as line_delivered,
        sum(case when s.status = 'delivered' then s.quantity else 0 end) >= l.quantity as line_in_full,
        max(s.delivered_ts) as last_delivered_at,
        max(cast(timezone('Europe/Paris', s.delivered_ts) as date)) as last_delivered_local_date
    from order_lines as l
    left join shipments as s on s.order_id = l.order_id and s.line_no = l.line_no
    group by l.order_id, l.line_no, l.quantity
),

deliveries as (
    select
        o.sales_channel, o.person_crm_id,
        cast(timezone('UTC', d.last_delivered_at) as date) as kpi_date,
        d.last_delivered_local_date <= o.promised_delivery_date as is_on_time,
        d.all_lines_in_full,
        date_diff('day', o.promised_delivery_date, d.last_delivered_local_date) as promise_gap_days
    from (
        select
            order_id,
            max(last_delivered_at) as last_delivered_at,
            max(last_delivered_local_date) as last_delivered_local_date,
            min(case when line_in_full then 1 else 0 end) = 1 as all_lines_in_full
        from line_delivery
        group by order_id
        having min(case when line_delivered then 1 else 0 end) = 1
    ) as d
    inner join orders as o on o.order_id = d.order_id
),

invoices as (
    select
        invoice_id, order_id, issued_at, amount_due_minor, currency, status,
        case
            when customer_ref like '%@%' then 'email:' || nullif(lower(trim(customer_ref)), '')
            else 'crm:' || nullif(trim(customer_ref), '')
        end as identifier
    from read_parquet('{{raw}}/billing/invoices/*/data.parquet', union_by_name = true, hive_partitioning = false)
    where _business_date <= date '{{as_of}}'
    qualify row_number() over (
        partition by invoice_id order by updated_at desc, _business_date desc, _extracted_at desc, _source_line desc
    ) = 1
),

payments as (
    select payment_id, invoice_id, attempted_at, method, status
    from read_parquet('{{raw}}/billing/payments/*/data.parquet', union_by_name = true, hive_partitioning = false)
    where _business_date <= date '{{as_of}}'
    qualify row_number() over (
        partition by payment_id order by _business_date desc, _extracted_at desc, _source_line desc
    ) = 1
),

order_refunds as (
    -- refunds of any invoice of the order
    select i.order_id, sum(r.amount_minor) as refunded_minor
    from (
        select payment_id, amount_minor
        from read_parquet('{{raw}}/billing/refunds/*/data.parquet', union_by_name = true, hive_partitioning = false)
        where _business_date <= date '{{as_of}}'
        qualify row_number() over (
            partition by refund_id order by _business_date desc, _extracted_at desc, _source_line desc
        ) = 1
    ) as r
    inner join payments as p on p.payment_id = r.payment_id
    inner join invoices as i on i.invoice_id = p.invoice_id
    where i.order_id is not null
    group by i.order_id
),

invoiced_orders as (
    -- an order's invoice is its lowest invoice_id, unless void; dated by its issue date
    select
        o.sales_channel, o.person_crm_id,
        cast(timezone('UTC', i.issued_at) as date) as kpi_date,
        i.amount_due_minor, i.currency,
        rf.order_id is not null as has_refund,
        coalesce(rf.refunded_minor, 0) as refunded_minor
    from orders as o
    inner join (
        select order_id, min(invoice_id) as invoice_id from invoices where order_id is not null group by order_id
    ) as oi on oi.order_id = o.order_id
    inner join invoices as i on i.invoice_id = oi.invoice_id
    left join order_refunds as rf on rf.order_id = o.order_id
    where i.status <> 'void'
),

payment_attempts as (
    select
        cast(timezone('UTC', p.attempted_at) as date) as kpi_date, p.method, p.status = 'failed' as is_failed,
        c.person_crm_id
    from payments as p
    left join invoices as i on i.invoice_id = p.invoice_id
    left join profile as c on c.identifier = i.identifier
),

-- one row per observation: nps counts promoters/detractors, rate/mean/median use x, ratio sums a / b
events as (
    select kpi_date, 'nps' as kpi, 'nps' as kind, person_crm_id, cast(null as varchar) as channel, touchpoint,
           case when score between 9 and 10 then 1 else 0 end as promoter,
           case when score between 0 and 6 then 1 else 0 end as detractor,
           cast(null as double) as x, cast(null as float) as a, cast(null as float) as b
    from responses where survey_type = 'nps' and score between 0 and 10
    union all
    select kpi_date, 'csat', 'rate', person_crm_id, null, touchpoint, 0, 0,
           case when score >= 4 then 1.0 else 0.0 end, null, null
    from responses where survey_type = 'csat' and score between 1 and 5
    union all
    select kpi_date, 'ces', 'mean', person_crm_id, null, touchpoint, 0, 0, cast(score as float), null, null
    from responses where survey_type = 'ces' and score is not null
    union all
    select cast(timezone('UTC', resolved_at) as date), 'fcr_rate', 'rate', person_crm_id, channel, 'support', 0, 0,
           case when is_fcr then 1.0 else 0.0 end, null, null
    from cases where is_resolved and resolved_at is not null
    union all
    -- hours between two instants: whole seconds of the UTC wall clocks (`::timestamp` would read the session's
    -- zone's wall clock: an hour off across a change of summer time on a machine in Paris)
    select cast(timezone('UTC', first_response_at) as date), 'first_response_hours_p50', 'median', person_crm_id,
           channel, 'support', 0, 0,
           date_diff('second', make_timestamp(epoch_us(opened_at)), make_timestamp(epoch_us(first_response_at)))
               / 3600.0, null, null
    from cases where first_response_at is not null
    union all
    select cast(timezone('UTC', resolved_at) as date), 'resolution_hours_p50', 'median', person_crm_id, channel,
           'support', 0, 0,
           date_diff('second', make_timestamp(epoch_us(opened_at)), make_timestamp(epoch_us(resolved_at))) / 3600.0,
           null, null
    from cases where is_resolved and resolved_at is not null
    union all
    select kpi_date, 'on_time_delivery_rate', 'rate', person_crm_id, sales_channel, 'delivery', 0, 0,
           case when is_on_time then 1.0 else 0.0 end, null, null
    from deliveries
    union all
    select kpi_date, 'otif_rate', 'rate', person_crm_id, sales_channel, 'delivery', 0, 0,
           case when is_on_time and all_lines_in_full then 1.0 else 0.0 end, null, null
    from deliveries
    union all
    select kpi_date, 'promise_gap_days_avg', 'mean', person_crm_id, sales_channel, 'delivery', 0, 0,
           cast(promise_gap_days as float), null, null
    from deliveries
    union all
    select kpi_date, 'refund_rate_orders', 'rate', person_crm_id, sales_channel, 'billing', 0, 0,
           case when has_refund then 1.0 else 0.0 end, null, null
    from invoiced_orders
    union all
    select kpi_date, 'refund_rate_value', 'ratio', person_crm_id, sales_channel, 'billing', 0, 0,
           null, cast(round(refunded_minor * fx_rate) as double), cast(round(amount_due_minor * fx_rate) as double)
    from (select *, cast(case currency when 'EUR' then 1.0 when 'GBP' then 1.16 when 'CHF' then 1.07 end as double)
                        as fx_rate
          from invoiced_orders) as converted  -- the dbt seed fx_rates, written out
    where fx_rate is not null
    union all
    select kpi_date, 'payment_failure_rate', 'rate', person_crm_id, method, 'billing', 0, 0,
           case when is_failed then 1.0 else 0.0 end, null, null
    from payment_attempts
),

-- each observation with its customer's segment and persona on its date
attributed as (
    select e.*, v.segment, v.persona
    from events as e
    left join crm_versions as v
        on v.customer_id = e.person_crm_id
        and (v.valid_from_date is null or v.valid_from_date <= e.kpi_date)
        and (v.valid_to_date is null or e.kpi_date < v.valid_to_date)
),

-- every KPI overall and per segment, persona, channel and touchpoint (a null dimension value is no group)
aggregated as (
    select
        kpi_date, kpi, kind,
        case
            when grouping(segment) = 0 then 'segment'
            when grouping(persona) = 0 then 'persona'
            when grouping(channel) = 0 then 'channel'
            when grouping(touchpoint) = 0 then 'touchpoint'
            else 'all'
        end as dimension,
        case
            when grouping(segment) = 0 then segment
            when grouping(persona) = 0 then persona
            when grouping(channel) = 0 then channel
            when grouping(touchpoint) = 0 then touchpoint
            else 'all'
        end as dimension_value,
        count(*) as n,
        sum(promoter) as promoters,
        sum(detractor) as detractors,
        sum(x) as x_sum,
        avg(x) as x_mean,
        stddev_samp(x) as x_sd,
        quantile_cont(x, 0.5) as x_median,
        sum(a) as a_sum,
        sum(b) as b_sum
    from attributed
    where kpi_date >= date '1970-01-01' and kpi_date <= date '{{as_of}}'
    group by grouping sets (
        (kpi_date, kpi, kind), (kpi_date, kpi, kind, segment), (kpi_date, kpi, kind, persona),
        (kpi_date, kpi, kind, channel), (kpi_date, kpi, kind, touchpoint)
    )
),

-- value with sample size and 95 % interval: Wilson for rates, adjusted Wald for NPS, normal for means
stats as (
    select
        *,
        ((promoters + 0.75) / (n + 3.0)) as p,
        ((detractors + 0.75) / (n + 3.0)) as d,
        x_sum * 1.0 / n as r
    from aggregated
    where dimension_value is not null
)

select
    kpi_date,
    kpi,
    dimension,
    dimension_value,
    case kind
        when 'nps' then cast(promoters - detractors as float)
        when 'ratio' then a_sum
        when 'median' then null
        else x_sum
    end as numerator,
    case kind when 'ratio' then b_sum else cast(n as float) end as denominator,
    case kind
        when 'nps' then 100.0 * (promoters - detractors) / n
        when 'rate' then x_sum / n
        when 'mean' then x_mean
        when 'median' then x_median
        when 'ratio' then case when b_sum > 0 then a_sum / b_sum end
    end as value,
    n,
    case kind when 'nps' then cast(promoters as bigint) end as promoters,
    case kind when 'nps' then cast(detractors as bigint) end as detractors,
    case kind when 'rate' then cast(x_sum as bigint) end as successes,
    case kind when 'mean' then x_sd end as sd,
    case kind
        when 'nps' then greatest(-100.0, 100.0 * ((p - d) - 1.96 * sqrt((p + d - (p - d) * (p - d)) / (n + 3.0))))
        when 'rate' then case when x_sum = 0 then 0.0 else greatest(0.0,
            (r + 1.96 * 1.96 / (2.0 * n) - 1.96 * sqrt(r * (1 - r) / n + 1.96 * 1.96 / (4.0 * n * n)))
            / (1 + 1.96 * 1.96 / n)) end
        when 'mean' then case when n > 1 then x_mean - 1.96 * x_sd / sqrt(n) end
    end as ci_low,
    case kind
        when 'nps' then least(100.0, 100.0 * ((p - d) + 1.96 * sqrt((p + d - (p - d) * (p - d)) / (n + 3.0))))
        when 'rate' then case when x_sum = n then 1.0 else least(1.0,
            (r + 1.96 * 1.96 / (2.0 * n) + 1.96 * sqrt(r * (1 - r) / n + 1.96 * 1.96 / (4.0 * n * n)))
            / (1 + 1.96 * 1.96 / n)) end
        when 'mean' then case when n > 1 then x_mean + 1.96 * x_sd / sqrt(n) end
    end as ci_high,
    -- finality (dbt vars refund_window_days 35, reopen_window_days 7, delivery_window_days 0; others 0)
    kpi_date + case
        when kpi in ('refund_rate_orders', 'refund_rate_value') then 35
        when kpi in ('fcr_rate', 'resolution_hours_p50') then 7
        else 0
    end as final_date,
    final_date <= date '{{as_of}}' as is_final,
    n >= 30 and is_final as is_reportable
from stats;
