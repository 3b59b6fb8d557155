"""Settings of the crm_sync service (``CRM_SYNC_*`` plus the common ones).

The FileMaker field names of A6Telecom's layout are not known: every name below is a setting with a documented
default (see ``docs/crm-sync.md``). Quadra's undocumented column positions are settings too.
"""

from __future__ import annotations

from comptoir_common.settings import ServiceSettings
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict


class FileMakerMapping(BaseModel):
    """Which FileMaker field feeds which directory field. Empty string = not mapped."""

    layout: str = "Clients"
    key_field: str = "ID_Client"
    mod_field: str = "DateModification"
    name_field: str = "RaisonSociale"
    account_number_field: str = "NumeroCompte"
    address_fields: list[str] = ["Adresse1", "Adresse2"]
    postal_code_field: str = "CodePostal"
    city_field: str = "Ville"
    country_field: str = "Pays"
    phone_field: str = "Telephone"
    # Company-level address(es), several separated by spaces, commas, semicolons or new lines.
    email_field: str = "Email"
    email_domains_field: str = ""
    sales_rep_field: str = "Commercial"
    # "auto" resolves by email when the value contains "@", otherwise by name; or force "email" / "name".
    sales_rep_match: str = "auto"
    parent_key_field: str = "ID_Revendeur"
    active_field: str = ""
    # Contacts in a portal (rows come as ``<portal>::<field>``); empty portal = no contacts from FileMaker.
    contacts_portal: str = "Contacts"
    contact_key_field: str = "ID_Contact"
    contact_name_field: str = "Nom"
    contact_first_name_field: str = "Prenom"
    contact_email_fields: list[str] = ["Email", "Email2"]
    contact_phone_field: str = "Telephone"
    contact_role_field: str = "Fonction"


class QuadraLayout(BaseModel):
    """1-based positions and lengths of the ASCII export's ``C`` (account) line. Defaults follow the public
    description (integrations.md); the address zone is undocumented, so its split is configurable."""

    account_number: tuple[int, int] = (2, 8)
    label: tuple[int, int] = (10, 30)
    alpha_key: tuple[int, int] = (40, 7)
    address_zone: tuple[int, int] = (47, 52)
    collective_account: tuple[int, int] = (99, 8)
    address_zone_2: tuple[int, int] = (107, 110)
    account_type: tuple[int, int] = (218, 1)
    # Where, inside the 52-character address zone, the street / postal code / city are (assumed; configurable).
    street: tuple[int, int] = (47, 32)
    postal_code: tuple[int, int] = (79, 5)
    city: tuple[int, int] = (84, 15)


class CrmSyncSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_SYNC_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "crm_sync"

    # FileMaker Data API. No URL = the sync is off (a local run without FileMaker).
    filemaker_url: str = ""
    filemaker_database: str = "A6Telecom"
    filemaker_user: str = ""
    filemaker_password: str = ""
    # True, False, or the path of a CA bundle.
    filemaker_verify_ssl: str = "true"
    filemaker_timeout: float = 30.0
    filemaker: FileMakerMapping = FileMakerMapping()
    # How often the incremental pass runs, and how often a full pass (deletions) runs.
    sync_interval: float = 30.0
    full_sync_interval: float = 6 * 3600.0
    # Re-read this much before the watermark (clock skew, the one-second resolution).
    sync_overlap_seconds: int = 120
    sync_page_size: int = 500
    sync_retries: int = 4
    sync_backoff: float = 1.0
    sync_lease_seconds: float = 300.0

    quadra: QuadraLayout = QuadraLayout()

    @property
    def filemaker_verify(self) -> bool | str:
        value = self.filemaker_verify_ssl.strip()
        if value.lower() in ("true", "1", "yes", "oui"):
            return True
        if value.lower() in ("false", "0", "no", "non"):
            return False
        return value
