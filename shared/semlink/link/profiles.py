"""Named link profiles and their sources.

Numbers are representative user-link figures, not a promise about any operator:

* ``leo``: LEO satellite at 600 km, transparent payload. 3GPP TR 38.821 (NTN, Rel-16)
  gives a round trip of about 25.8 ms (one way about 13 ms) at nadir, up to ~50 ms at
  low elevation; a narrowband share of 100 kbit/s, 1% frame loss.
* ``geo``: GEO satellite, transparent payload. TR 38.821 gives a ~541 ms round trip
  (one way ~270 ms); 32 kbit/s share, 0.5% frame loss.
* ``nb-ntn``: NB-IoT over NTN direct-to-device (3GPP Rel-17, TS 36.300 sec. 23.x):
  a few kbit/s; 2.4 kbit/s here, LEO delay, bursty (Gilbert-Elliott) loss.
* ``6g-urban``: a congested 6G urban cell-edge slice: 1 Mbit/s, 2 ms one way, 0.1% loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class LossModel:
    """Frame loss: Bernoulli (``p_bad_to_good`` unused) or Gilbert-Elliott (two states)."""

    loss_good: float = 0.0
    """Loss probability in the good (or only) state."""
    loss_bad: float = 0.0
    p_good_to_bad: float = 0.0
    """Per-frame probability of moving from the good to the bad state (0 = Bernoulli)."""
    p_bad_to_good: float = 1.0

    @classmethod
    def bernoulli(cls, p: float) -> LossModel:
        return cls(loss_good=p)

    @property
    def mean_loss(self) -> float:
        """Stationary frame-loss rate."""
        if self.p_good_to_bad == 0:
            return self.loss_good
        pi_bad = self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good)
        return (1 - pi_bad) * self.loss_good + pi_bad * self.loss_bad


@dataclass(frozen=True)
class LinkProfile:
    name: str
    rate_bps: float
    """Channel rate in bits per second."""
    delay_s: float
    """One-way propagation delay in seconds."""
    jitter_s: float = 0.0
    """Standard deviation of extra per-frame delay (half-normal), seconds."""
    loss: LossModel = field(default_factory=LossModel)
    mtu_bytes: int = 256
    """Largest frame on the air, frame header included."""
    frame_header_bytes: int = 8
    """Per-frame header: packet id, layer index, fragment index/count, check."""
    arq_retries: int = 2
    """Retransmissions allowed per frame (0 = none); a loss is learnt one round trip later."""
    header_copies: int = 2
    """The packet header (without which nothing decodes) goes on the air this many times."""
    deadline_s: float = 10.0
    """Delivery deadline after the first bit: the ground decodes what arrived whole by then."""

    def with_overrides(self, **changes: Any) -> LinkProfile:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


LINK_PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile("leo", 100_000, 0.013, 0.002, LossModel.bernoulli(0.01), deadline_s=2.0),
        LinkProfile("geo", 32_000, 0.270, 0.005, LossModel.bernoulli(0.005), deadline_s=5.0),
        LinkProfile(
            "nb-ntn",
            2_400,
            0.013,
            0.003,
            LossModel(loss_good=0.01, loss_bad=0.5, p_good_to_bad=0.02, p_bad_to_good=0.25),
            mtu_bytes=128,
            deadline_s=20.0,
        ),
        LinkProfile(
            "6g-urban", 1_000_000, 0.002, 0.0005, LossModel.bernoulli(0.001), deadline_s=1.0
        ),
    )
}


def get_link_profile(name: str) -> LinkProfile:
    try:
        return LINK_PROFILES[name]
    except KeyError:
        raise KeyError(
            f"unknown link profile {name!r}; known: {', '.join(LINK_PROFILES)}"
        ) from None
