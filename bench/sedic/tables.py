"""The Markdown tables bench/bench_sedic.py prints: components, decoder steps, encode."""

from __future__ import annotations

from typing import Any


def print_components(components: list[tuple[str, dict[str, Any]]]) -> None:
    print("| component | parameters | load (s) | peak RSS of a process holding it (MiB) |")
    print("|---|---:|---:|---:|")
    for name, r in components:
        print(f"| {name} | {r['params'] / 1e6:.1f} M | {r['load_s']:.1f} | {r['rss']:.0f} |")


def print_decoder(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    print(
        "| size | plain step (s) | guided step (s) | guided / plain | ControlNet (s) | UNet (s) "
        "| energy fwd (s) | energy fwd+bwd (s) | same, first level only (s) "
        "| whole decode (s, steps) | whole decode / unguided (est.) | decoder peak RSS (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        gpu = f" (GPU {r['gpu_peak_mib']:.0f})" if "gpu_peak_mib" in r else ""
        # One object: guidance runs on round(steps / 2) of its steps; the rest is unguided.
        extra = round(r["decode_steps"] / 2) * (r["guided"] - r["plain"])
        whole_ratio = r["decode_s"] / max(r["decode_s"] - extra, 1e-9)
        print(
            f"| {r['size']}x{r['size']} | {r['plain']:.2f} | {r['guided']:.2f} | "
            f"{r['guided'] / r['plain']:.2f} | {r['controlnet']:.2f} | {r['unet']:.2f} | "
            f"{r['energy_fwd']:.2f} | {r['energy_fwd_bwd']:.2f} | {r['energy_first_level']:.2f} | "
            f"{r['decode_s']:.1f} ({r['decode_steps']}) | {whole_ratio:.2f} | {r['rss']:.0f}{gpu} |"
        )
    print(
        f"\nORAG hooks {len(info['hooked'])} of the UNet's {len(info['cross'])} cross-attention "
        f"layers (contracting path + middle block): {', '.join(info['hooked'])}"
    )


def print_encode(encoded: dict[str, Any]) -> None:
    print(
        "\n| size | sedic encode (s) | caption | grounding | segmentation | reference "
        "| packet bytes (layers) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for size, e in encoded["sizes"].items():
        s = e["stages"]
        layers = ", ".join(f"{k} {n}" for k, n in e["layers"])
        print(
            f"| {size}x{size} | {e['total_s']:.1f} | {s.get('extract_caption', 0):.1f} | "
            f"{s.get('extract_grounding', 0):.1f} | {s.get('extract_segmentation', 0):.1f} "
            f"| {s.get('reference', 0):.1f} | {e['bytes']} ({layers}) |"
        )
    print(
        f"encoder process: models loaded in {encoded['load_s']:.1f} s, "
        f"peak RSS {encoded['rss']:.0f} MiB"
    )
