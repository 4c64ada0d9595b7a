"""What a compose-test run found, and the table it prints at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    images: dict[str, dict[str, float]] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    rows: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def print_table(report: Report, total: float) -> None:
    print("\n== compose-test ==")
    print(f"{'image':<40}{'size (MB)':>10}{'build (s)':>11}")
    for image, row in report.images.items():
        built = "reused" if row["build_s"] != row["build_s"] else f"{row['build_s']:.0f}"
        print(f"{image:<40}{row['size_mb']:>10.0f}{built:>11}")
    print("(the decoder's cpu target repeats the encoder's steps: the two share their layers)")
    print(f"\n{'service':<40}{'healthy after up (s)':>21}")
    for service, seconds in report.startup.items():
        print(f"{service:<40}{seconds:>21.0f}")
    print(
        f"\n{'photo':<12}{'bytes':>7}{'bpp':>8}{'layers':>8}{'PSNR':>8}{'MS-SSIM':>9}"
        f"{'enc ms':>8}{'dec ms':>8}{'e2e s':>7}"
    )
    for r in report.rows:
        print(
            f"{r.name:<12}{r.bytes:>7}{r.bpp:>8.4f}{r.layers:>8}{r.psnr:>8.2f}"
            f"{r.ms_ssim:>9.4f}{r.encode_ms:>8.0f}{r.decode_ms:>8.0f}{r.end_to_end_s:>7.1f}"
        )
    for note in report.notes:
        print(f"note: {note}")
    print(f"\ncompose-test passed in {total:.0f} s")
