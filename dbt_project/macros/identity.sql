{#- Identity keys used to match customers across systems (docs/identity.md). -#}

{#- E-mail as matched: trimmed and lower-cased; empty -> null. -#}
{% macro normalize_email(col) -%}
    nullif(lower(trim({{ col }})), '')
{%- endmacro %}

{#- The hash of a phone number in E.164, what CRM profiles of one person share. -#}
{% macro phone_hash(phone, country) -%}
    case when {{ phone }} is not null then {{ dbt.hash(phone_e164(phone, country)) }} end
{%- endmacro %}

{#- A customer reference (billing, survey) is a CRM customer_id or an e-mail. -#}
{% macro ref_customer_id(col) -%}
    case when {{ col }} like '%@%' then null else nullif(trim({{ col }}), '') end
{%- endmacro %}

{% macro ref_email(col) -%}
    case when {{ col }} like '%@%' then {{ normalize_email(col) }} end
{%- endmacro %}

{#- Phone in E.164 (+<country code><number>) from the notations the CRM holds:
    +33 6 12.., +336.., 0033.., and national 06 12.. (country code from the customer's country). -#}
{% macro phone_e164(phone, country) -%}
    case
        when {{ phone }} is null then null
        when {{ strip_phone(phone) }} like '+%' then {{ strip_phone(phone) }}
        when {{ strip_phone(phone) }} like '00%' then {{ dbt.concat(["'+'", dbt.right(strip_phone(phone), dbt.length(strip_phone(phone)) ~ ' - 2')]) }}
        when {{ strip_phone(phone) }} like '0%' then {{ dbt.concat(["'+'", country_calling_code(country), dbt.right(strip_phone(phone), dbt.length(strip_phone(phone)) ~ ' - 1')]) }}
    end
{%- endmacro %}

{% macro strip_phone(phone) -%}
    replace(replace(replace(replace({{ phone }}, ' ', ''), '.', ''), '-', ''), '/', '')
{%- endmacro %}

{% macro country_calling_code(country) -%}
    case {{ country }}
        when 'FR' then '33' when 'BE' then '32' when 'CH' then '41' when 'GB' then '44' when 'DE' then '49'
        when 'ES' then '34' when 'IT' then '39' when 'NL' then '31' when 'LU' then '352'
    end
{%- endmacro %}

{#- A one-way key of the normalized e-mail: lets records match across systems (and erased
    customers keep counting) without carrying the address itself. -#}
{% macro email_hash(col) -%}
    case when {{ normalize_email(col) }} is not null then {{ dbt.hash(normalize_email(col)) }} end
{%- endmacro %}

{#- The identifier of a customer reference: its CRM id, else its e-mail hash. -#}
{% macro customer_identifier(customer_id, email_hash) -%}
    case
        when {{ customer_id }} is not null then {{ dbt.concat(["'crm:'", customer_id]) }}
        when {{ email_hash }} is not null then {{ dbt.concat(["'email:'", email_hash]) }}
    end
{%- endmacro %}
