"""Voluntary-sector (social prescribing) referrals: a name, a date of birth as typed, a postcode."""

from openphm.sources.base import BIRTH_EARLIEST, Column, SourceSpec

SPEC = SourceSpec(
    name="vcse",
    description="Social prescribing referrals to voluntary and community organisations",
    table="vcse",
    nhs_number_column=None,
    columns=(
        Column("record_id", required=True),
        Column("organisation"),
        Column("client_name", required=True, identifier=True, max_length=71),
        Column("date_of_birth", "date", True, date_format="%d/%m/%Y", identifier=True,
               earliest=BIRTH_EARLIEST),
        Column("postcode", "code", False, "postcode", identifier=True),
        Column("referral_date", "date", True),
        Column("referred_by", "code", False, "ods_practice"),
        Column("referral_reason"),
    ),
    date_column="referral_date",
)
