"""Similar and repeat petitions for the API: the petitioner's keyed identity, lookups, linking.

A petitioner is recognised by a keyed hash (HMAC-SHA256 with TRIAGE_PETITIONER_SECRET) of the
normalised contact; the contact itself is neither stored nor logged. Without the secret the hash
cannot be recomputed from a guessed phone number, and rotating the secret starts identities afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata

from model.taxonomy import Taxonomy
from service.auth import Permission, Principal
from service.errors import ApiError
from service.logging import log_event
from service.schemas import PetitionOut, SimilarOut
from service.settings import Settings
from service.views import petition_out
from store import LinkRefused, PetitionNotFound, PetitionRecord, QueueStore
from store.similar import Related, SimilarPetitions

logger = logging.getLogger("triage.similar")

_SEPARATORS = re.compile(r"[\s\-()（）]+")
_COUNTRY_CODE = re.compile(r"^(?:\+86|0086|86)(?=1[3-9][0-9]{9}$)")


def normalised_contact(contact: str) -> str:
    """One form per contact: full-width folded, lower case, no spaces or dashes, no +86 before a mobile."""
    folded = _SEPARATORS.sub("", unicodedata.normalize("NFKC", contact).strip().lower())
    return _COUNTRY_CODE.sub("", folded)


def petitioner_key(contact: str | None, settings: Settings) -> str | None:
    """The stored identity of a petitioner: HMAC-SHA256 of the normalised contact (hex), or None."""
    if contact is None or not normalised_contact(contact):
        return None
    digest = hmac.new(settings.petitioner_hmac_key(), normalised_contact(contact).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()


def similar_out(related: Related) -> list[SimilarOut]:
    repeat = related.repeat_of.brief.id if related.repeat_of else None
    return [
        SimilarOut(
            id=item.brief.id,
            score=item.score,
            status=item.brief.status,
            queue=item.brief.queue,
            received_at=item.brief.received_at,
            same_petitioner=item.brief.id == repeat,
        )
        for item in related.similar
    ]


def find_related(
    similar: SimilarPetitions,
    settings: Settings,
    masked_text: str,
    key: str | None = None,
    petition_id: int | None = None,
) -> Related:
    return similar.related(
        masked_text,
        limit=settings.similar_limit,
        min_score=settings.similar_min_score,
        petitioner_key=key,
        petition_id=petition_id,
    )


def petition_related(
    similar: SimilarPetitions, settings: Settings, principal: Principal, petition: PetitionRecord, key: str | None
) -> list[SimilarOut]:
    """Similar petitions for a stored one, for callers who may see every queue (others get none)."""
    if not principal.can(Permission.READ_ALL_QUEUES):
        return []
    return similar_out(find_related(similar, settings, petition.masked_text, key, petition.id))


def link(
    store: QueueStore,
    similar: SimilarPetitions,
    settings: Settings,
    taxonomy: Taxonomy,
    principal: Principal,
    petition_id: int,
    case_id: int,
    note: str | None,
) -> PetitionOut:
    """Link a repeat to the existing case; both histories record it (who, when, which)."""
    try:
        petition = store.link(petition_id, case_id, actor=principal.name, role=principal.role, note=note)
    except PetitionNotFound as error:
        missing = int(error.args[0])
        raise ApiError(404, "petition_not_found", f"信访件 {missing} 不存在", f"no petition {missing}") from error
    except LinkRefused as error:
        if error.reason == "self":
            raise ApiError(422, "link_to_self", "不能关联到自身", "a petition cannot be linked to itself") from error
        raise ApiError(
            409,
            "link_cycle",
            f"信访件 {case_id} 已关联到 {petition_id}，不能互相关联",
            f"petition {case_id} is already linked to {petition_id}",
        ) from error
    log_event(logger, logging.INFO, "petition.linked", petition_id=petition_id, case_id=case_id, actor=principal.name)
    return petition_out(taxonomy, principal, petition, petition_related(similar, settings, principal, petition, None))
