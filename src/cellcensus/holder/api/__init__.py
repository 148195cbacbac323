"""The HTTP service of the safe environment (FastAPI): auth, scopes, jobs, governance, audit."""

from cellcensus.holder.api.app import create_app
from cellcensus.holder.api.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
