"""The application's services, built once by ``tenantry.app.build_services`` and handed to routers, commands
and jobs. Its own module so that the job engines (``tenantry.jobs``) and the domains' registrations can name the
type without importing the composition root (no import circle)."""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.archive.compliance import ComplianceService
from tenantry.archive.ediscovery import EDiscoveryService
from tenantry.archive.indexing import Indexer
from tenantry.archive.ledger import Ledger
from tenantry.archive.search import SearchIndex
from tenantry.archive.service import ArchiveService
from tenantry.auth.service import SignIn
from tenantry.connectors.service import ConnectorService
from tenantry.core.db import Database
from tenantry.core.secrets import SecretBox
from tenantry.core.settings import Settings
from tenantry.directory.scim_log import ScimLog
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService
from tenantry.jobstore import JobStore
from tenantry.provisioning.service import ProvisioningService
from tenantry.trust.gate import PartnerGate
from tenantry.trust.service import TrustService
from tenantry.trust.unlocks import PartnerActions
from tenantry.voice.certificates import VoiceCertificates
from tenantry.voice.service import VoiceService


@dataclass
class Services:
    settings: Settings
    db: Database
    directory: DirectoryService
    scim: ScimStore
    secrets: SecretBox
    archive: ArchiveService
    connectors: ConnectorService
    ledger: Ledger
    compliance: ComplianceService
    index: SearchIndex
    indexer: Indexer
    ediscovery: EDiscoveryService
    provisioning: ProvisioningService
    jobstore: JobStore
    scim_log: ScimLog
    signin: SignIn
    trust: TrustService
    partner_gate: PartnerGate           # who a partner is (its token), over /trust/{realm}/…
    partner_actions: PartnerActions     # what trust unlocks in mailboxes
    voice: VoiceService                 # hybrid voice: sites, gateways, users' voice settings, checks
    voice_certificates: VoiceCertificates   # the tenant root CA and gateways' certificates
