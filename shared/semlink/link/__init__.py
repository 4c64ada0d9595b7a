"""The emulated space link: packets cut into frames on one channel clock."""

from semlink.link.emulator import Delivery, LinkEmulator, split_packet
from semlink.link.profiles import LINK_PROFILES, LinkProfile, LossModel, get_link_profile

__all__ = [
    "LINK_PROFILES",
    "Delivery",
    "LinkEmulator",
    "LinkProfile",
    "LossModel",
    "get_link_profile",
    "split_packet",
]
