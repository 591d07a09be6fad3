"""The content detectors by stable id, and one call that runs them all over a Document.

Rules name detectors by these ids (detections.cn_resident_id: {gte: 50}); add, never rename.
Detector is a Protocol rather than a base class so that markings.py and identifiers.py need not
import this module, which imports them for the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from loguru import logger

from agent.content.document import Document
from agent.content.identifiers import BankCardDetector, MobileDetector, ResidentIdDetector, UsccDetector
from agent.content.markings import StateSecretMarkingDetector, StateSecretMentionDetector, TradeSecretMarkingDetector
from rules.events import Detection


class Detector(Protocol):
    id: str  # stable, the key in DETECTORS and in rules

    def detect(self, document: Document) -> Detection | None:
        """A Detection (count and one masked sample) for what was found, or None for nothing."""
        ...


DETECTORS: dict[str, type[Detector]] = {
    "bank_card": BankCardDetector,
    "cn_mobile": MobileDetector,
    "cn_resident_id": ResidentIdDetector,
    "cn_uscc": UsccDetector,
    "state_secret_marking": StateSecretMarkingDetector,
    "state_secret_mention": StateSecretMentionDetector,
    "trade_secret_marking": TradeSecretMarkingDetector,
}


FAILED = "detector_failed"  # a detector raised: its answer is missing; sample "<detector id>: <exception type>"


def detect(document: Document, detectors: Iterable[Detector] | None = None) -> tuple[Detection, ...]:
    """Run every detector (all registered ones by default); non-zero detections, sorted by detector id.

    A detector that raises loses its own answer only: the others still run, and one FAILED
    detection counts the detectors that failed, the first one's id and exception type as its
    sample (never the content or the exception's message, which may quote it)."""
    chosen = [cls() for cls in DETECTORS.values()] if detectors is None else detectors
    found: list[Detection] = []
    failed: list[str] = []
    for detector in chosen:
        try:
            detection = detector.detect(document)
        except Exception as exc:  # noqa: BLE001 - contain at the detector boundary; logged without content
            logger.opt(exception=False).warning("detector failed detector={} error={}", detector.id, type(exc).__name__)
            failed.append(f"{detector.id}: {type(exc).__name__}")
            continue
        if detection is not None and detection.count > 0:
            found.append(detection)
    if failed:
        found.append(Detection(FAILED, len(failed), "; ".join(failed)[:200]))
    return tuple(sorted(found, key=lambda d: d.detector))
