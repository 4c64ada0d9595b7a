"""The link emulator: airtime, loss rates, ARQ, deadline and priority order, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from semlink import decode, encode
from semlink.link import LinkEmulator, LossModel, get_link_profile, split_packet
from semlink.link.profiles import LINK_PROFILES
from semlink.packet import Layer, Packet, serialize


def _packet(layer_sizes: list[int]) -> bytes:
    layers = tuple(
        Layer(kind=1, codec=0, payload=bytes([i % 251]) * n) for i, n in enumerate(layer_sizes)
    )
    return serialize(Packet(768, 512, model_fingerprint=7, layers=layers))


def test_segments_reassemble_any_prefix_into_valid_packets() -> None:
    data = _packet([300, 40, 900])
    segments = split_packet(data)
    assert b"".join(segments) == data
    for keep in range(1, len(segments) + 1):
        rebuilt = b"".join(segments[:keep])
        from semlink.packet import parse

        assert len(parse(rebuilt).layers) == keep - 1


def test_airtime_is_bytes_over_rate_and_latency_adds_delay() -> None:
    profile = get_link_profile("geo").with_overrides(loss=LossModel(), jitter_s=0.0)
    data = _packet([1000, 200])
    delivery = LinkEmulator(profile).transmit(data, seed=1)
    assert delivery.airtime_s == pytest.approx(8 * delivery.bytes_sent / profile.rate_bps)
    assert delivery.latency_s == pytest.approx(delivery.airtime_s + profile.delay_s)
    assert delivery.delivered == data
    frames = sum(
        -(-len(s) // (profile.mtu_bytes - profile.frame_header_bytes)) for s in split_packet(data)
    )
    assert delivery.frames_sent == frames + 1  # plus the second header copy


@pytest.mark.parametrize(
    "loss",
    [
        LossModel.bernoulli(0.1),
        LossModel(loss_good=0.01, loss_bad=0.6, p_good_to_bad=0.05, p_bad_to_good=0.3),
    ],
)
def test_frame_loss_rate_matches_the_model(loss: LossModel) -> None:
    profile = get_link_profile("leo").with_overrides(loss=loss, arq_retries=0, deadline_s=1e9)
    emulator = LinkEmulator(profile)
    data = _packet([4000] * 5)
    sent = dropped = 0
    for seed in range(40):
        delivery = emulator.transmit(data, seed)
        sent += delivery.frames_sent
        dropped += delivery.frames_dropped
    print(f"{sent} frames, measured loss {dropped / sent:.4f}, model {loss.mean_loss:.4f}")
    assert sent > 3000
    assert dropped / sent == pytest.approx(loss.mean_loss, abs=0.02)


def test_same_seed_same_result_other_seed_other_draws() -> None:
    profile = get_link_profile("nb-ntn")
    data = _packet([600, 300])
    a, b = LinkEmulator(profile).transmit(data, 5), LinkEmulator(profile).transmit(data, 5)
    assert a == b
    outcomes = {
        (d.frames_dropped, round(d.latency_s, 6))
        for d in (LinkEmulator(profile).transmit(data, s) for s in range(20))
    }
    assert len(outcomes) > 1


def test_arq_recovers_losses_within_its_budget() -> None:
    lossy = get_link_profile("leo").with_overrides(loss=LossModel.bernoulli(0.3), deadline_s=1e9)
    data = _packet([2000])
    without = LinkEmulator(lossy.with_overrides(arq_retries=0))
    with_arq = LinkEmulator(lossy.with_overrides(arq_retries=8))
    delivered_without = sum(without.transmit(data, s).layers_delivered for s in range(30))
    deliveries = [with_arq.transmit(data, s) for s in range(30)]
    assert sum(d.layers_delivered for d in deliveries) > delivered_without
    assert all(d.frames_retransmitted <= 8 * d.frames_sent for d in deliveries)
    assert sum(d.frames_retransmitted for d in deliveries) > 0


def test_deadline_drops_the_tail_and_priority_keeps_the_head(chelsea: np.ndarray) -> None:
    result = encode(chelsea, max_bytes=900, caption="a cat")
    profile = get_link_profile("nb-ntn").with_overrides(loss=LossModel(), deadline_s=2.0)
    delivery = LinkEmulator(profile).transmit(result.data, seed=1)
    # 2.4 kbit/s for 2 s is ~600 bytes: the reference base does not make it, nothing after it may.
    assert delivery.layers_delivered < delivery.layers_sent
    decoded = decode(delivery.delivered)
    assert decoded.image.shape == chelsea.shape
    full = LinkEmulator(profile.with_overrides(deadline_s=60.0)).transmit(result.data, seed=1)
    assert decode(full.delivered).layers_used == ["reference", "caption"]


def test_profiles_are_named_with_their_parameters() -> None:
    assert set(LINK_PROFILES) == {"leo", "geo", "nb-ntn", "6g-urban"}
    assert 2 * LINK_PROFILES["geo"].delay_s == pytest.approx(0.54, abs=0.01)
    assert 0.02 <= 2 * LINK_PROFILES["leo"].delay_s <= 0.05
    assert LINK_PROFILES["nb-ntn"].rate_bps < 10_000
