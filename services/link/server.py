"""LinkService servicer: push packets through the link emulator, in real time or not."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

import grpc

from semlink.link import Delivery, LinkEmulator, LinkProfile
from semlink.serving import ServerConfig, ServiceRuntime, run_service
from semlink.v1 import link_pb2, link_pb2_grpc

NAME = "link"


class LinkServicer(link_pb2_grpc.LinkServiceServicer):
    def __init__(
        self, runtime: ServiceRuntime, profile: LinkProfile, realtime: bool, seed: int
    ) -> None:
        self.runtime = runtime
        self.emulator = LinkEmulator(profile)
        self.realtime = realtime
        self._seeds = itertools.count(seed)

    async def Transmit(
        self, request: link_pb2.TransmitRequest, context: grpc.aio.ServicerContext
    ) -> link_pb2.TransmitResponse:
        seed = request.seed or next(self._seeds)

        def work(check: Callable[[], None]) -> Delivery:
            return self.emulator.transmit(request.packet, seed)

        delivery, _ = await self.runtime.run(context, work)
        assert isinstance(delivery, Delivery)
        profile = self.emulator.profile.name
        m = self.runtime.metrics
        m.link_airtime.labels(profile).observe(delivery.airtime_s)
        m.link_latency.labels(profile).observe(delivery.latency_s)
        m.link_goodput.labels(profile).observe(delivery.goodput_bps)
        m.link_frames.labels(profile, "sent").inc(delivery.frames_sent)
        m.link_frames.labels(profile, "dropped").inc(delivery.frames_dropped)
        m.link_frames.labels(profile, "retransmitted").inc(delivery.frames_retransmitted)
        m.link_layers.labels(profile, "sent").inc(delivery.layers_sent)
        m.link_layers.labels(profile, "delivered").inc(delivery.layers_delivered)
        if self.realtime:
            # Play the transmission in real time: the packet is "on the air" this long.
            await asyncio.sleep(delivery.latency_s or self.emulator.profile.deadline_s)
        return link_pb2.TransmitResponse(
            delivered=delivery.delivered,
            stats=link_pb2.LinkStats(
                profile=profile,
                frames_sent=delivery.frames_sent,
                frames_dropped=delivery.frames_dropped,
                frames_retransmitted=delivery.frames_retransmitted,
                layers_sent=delivery.layers_sent,
                layers_delivered=delivery.layers_delivered,
                airtime_seconds=delivery.airtime_s,
                latency_seconds=delivery.latency_s,
                goodput_bps=delivery.goodput_bps,
                bytes_sent=delivery.bytes_sent,
                bytes_delivered=delivery.bytes_delivered,
            ),
        )


def servicers_for(
    profile: LinkProfile, realtime: bool = True, seed: int = 1
) -> Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]]:
    def add_servicers(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
        link_pb2_grpc.add_LinkServiceServicer_to_server(
            LinkServicer(runtime, profile, realtime, seed), server
        )
        return [link_pb2.DESCRIPTOR.services_by_name["LinkService"].full_name]

    return add_servicers


async def load() -> None:
    """The emulator needs no models."""


def main(config: ServerConfig, profile: LinkProfile, realtime: bool = True) -> None:
    run_service(NAME, config, servicers_for(profile, realtime), load)
