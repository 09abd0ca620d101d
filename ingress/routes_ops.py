"""``/healthz`` and ``/readyz``: is the process up, and do Kafka and the store answer.

Both are public (no key: load balancers and orchestrators call them), so they name what
does not answer but never where it is: no broker address, no database URL. The process's
log says where (``ingress connected to Kafka at ...``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ingress.deps import BridgeDep, StoreDep
from ingress.docs import NOT_READY, answers, error_responses
from schemas.errors import ServiceUnavailable

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="The process is up", responses=answers({"status": "ok"}, 200))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Kafka and the store answer",
    responses={**answers({"status": "ready"}, 200), **error_responses(NOT_READY, auth=False)},
)
async def readyz(bridge: BridgeDep, store: StoreDep) -> Any:
    problems = []
    try:
        if not bridge.connected:
            raise ServiceUnavailable("not connected")
        await bridge.ping()
    except ServiceUnavailable:
        problems.append("Kafka does not answer")
    try:
        await store.ping()
    except Exception:
        problems.append("the store does not answer")
    if problems:
        return JSONResponse(
            {"detail": "Not ready: " + "; ".join(problems) + ".", "code": "not_ready"},
            status_code=503,
        )
    return {"status": "ready"}
