"""The enclave: runs catalogue algorithms on the store and releases only protected output."""

from cellcensus.holder.enclave.audit import AuditLog, AuditVerdict
from cellcensus.holder.enclave.jobs import Job, JobStatus
from cellcensus.holder.enclave.runner import Enclave
from cellcensus.holder.enclave.service import EnclaveService, JobRequest, ServiceLimits
from cellcensus.holder.enclave.state import State, open_state

__all__ = [
    "AuditLog",
    "AuditVerdict",
    "Enclave",
    "EnclaveService",
    "Job",
    "JobRequest",
    "JobStatus",
    "ServiceLimits",
    "State",
    "open_state",
]
