#!/usr/bin/env python3
"""Turns the deploy benchmark's measurements (JSON lines) into a Markdown report and a timeline chart.

usage: report.py MEASUREMENTS.jsonl RATE REPS OUT_DIR
Writes OUT_DIR/deploy-DATE.md, .svg (and .png when rsvg-convert is installed) and keeps the raw .jsonl.
Standard library only.
"""
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

SCENARIOS = ["fast", "bump", "unchanged", "rollback", "cold", "baseline"]
SKIFF_STAGES = ["restore", "build", "pack", "upload", "activate"]
CONTAINER_STAGES = ["publish", "image_build", "push", "pull", "start_to_ready"]
COLORS = {
    "restore": "#9ecae1", "build": "#3182bd", "pack": "#6baed6", "upload": "#fd8d3c", "activate": "#31a354",
    "publish": "#3182bd", "image_build": "#756bb1", "push": "#fd8d3c", "pull": "#e6550d", "start_to_ready": "#31a354",
}


def median(values):
    return statistics.median(values) if values else 0


def spread(values):
    return f"{median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def human_bytes(n):
    for unit in ["B", "KiB", "MiB", "GiB"]:
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def machine():
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    dotnet = subprocess.run(["dotnet", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {memory}, Linux {platform.release()}, .NET SDK {dotnet}"


def main():
    path, rate, reps, out_dir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    rows = [json.loads(line) for line in open(path) if line.strip()]
    apps = list(dict.fromkeys(r["app"] for r in rows))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"deploy-{date}")

    lines = [
        f"# Deploy benchmark, {date}",
        "",
        f"Machine: {machine()}. Link: every hop shaped to {rate} each way (tc tbf on veth pairs between three "
        f"network namespaces: CLI and image build | server, blob store and registry | agent and container host). "
        f"{reps} repetitions per scenario, interleaved. Times in ms: median (min–max).",
        "",
    ]
    headline = []
    for app in apps:
        lines += [f"## {app}", "", "| scenario | path | total (CLI start → live) | bytes moved | stages: median (min–max) |", "|---|---|---|---|---|"]
        for scenario in SCENARIOS:
            subset = [r for r in rows if r["app"] == app and r["scenario"] == scenario]
            if not subset:
                continue
            walls = [r["wall_ms"] for r in subset]
            stage_names = CONTAINER_STAGES if scenario == "baseline" else SKIFF_STAGES
            stages = ", ".join(
                f"{s} {spread([r['stages'].get(s, 0) for r in subset])}"
                for s in stage_names if any(s in r["stages"] for r in subset))
            lines.append(
                f"| {scenario} | {'/'.join(sorted(set(r['path'] for r in subset)))} | {spread(walls)} "
                f"| {human_bytes(median([r['bytes'] for r in subset]))} ({human_bytes(min(r['bytes'] for r in subset))}–{human_bytes(max(r['bytes'] for r in subset))}) | {stages} |")
        fast = median([r["wall_ms"] for r in rows if r["app"] == app and r["scenario"] == "fast"])
        baseline = median([r["wall_ms"] for r in rows if r["app"] == app and r["scenario"] == "baseline"])
        if fast and baseline:
            headline.append((app, baseline / fast, baseline, fast))
        lines.append("")

    lines += ["## Headline", "", "| app | container-image deploy ÷ Skiff fast path |", "|---|---|"]
    for app, ratio, baseline, fast in headline:
        lines.append(f"| {app} | **{ratio:.1f}×** ({baseline:.0f} ms ÷ {fast:.0f} ms) |")
    lines += ["", "## Where the time goes", ""]
    for app in apps:
        for scenario, stages, label in [("fast", SKIFF_STAGES, "Skiff fast path"), ("baseline", CONTAINER_STAGES, "container image")]:
            subset = [r for r in rows if r["app"] == app and r["scenario"] == scenario]
            if not subset:
                continue
            total = median([r["wall_ms"] for r in subset])
            parts = ", ".join(
                f"{s} {median([r['stages'].get(s, 0) for r in subset]):.0f} ms ({100 * median([r['stages'].get(s, 0) for r in subset]) / total:.0f}%)"
                for s in stages)
            rest = total - sum(median([r["stages"].get(s, 0) for r in subset]) for s in stages)
            lines.append(f"- {app}, {label}, {total:.0f} ms: {parts}; the rest ({rest:.0f} ms) is process start-up and coordination.")
    lines += ["", f"![stage timelines]({os.path.basename(stem)}.svg)", ""]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines))
    shutil.copyfile(path, stem + ".jsonl")
    chart(rows, apps, stem + ".svg")
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", stem + ".png", stem + ".svg"], check=False)
    print("\n".join(lines))
    print(f"\nwrote {stem}.md, .svg, .jsonl")


def chart(rows, apps, path):
    """Stacked horizontal bars of median stage times: Skiff fast, Skiff cold, container baseline, per app."""
    bars = []
    for app in apps:
        for scenario, label, stages in [("fast", "Skiff fast path", SKIFF_STAGES), ("cold", "Skiff cold", SKIFF_STAGES),
                                        ("baseline", "container image", CONTAINER_STAGES)]:
            subset = [r for r in rows if r["app"] == app and r["scenario"] == scenario]
            if subset:
                bars.append((f"{app}: {label}", [(s, median([r["stages"].get(s, 0) for r in subset])) for s in stages],
                             median([r["wall_ms"] for r in subset])))
    longest = max((total for _, _, total in bars), default=1)
    width, left, row = 1000, 220, 34
    scale = (width - left - 90) / longest
    height = 60 + row * len(bars) + 60
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="24" font-size="15" font-weight="bold">Deploy timelines (median ms): where the time goes</text>']
    for i, (label, stages, total) in enumerate(bars):
        y = 50 + i * row
        svg.append(f'<text x="10" y="{y + 17}">{label}</text>')
        x = left
        for stage, ms in stages:
            w = ms * scale
            if w > 0:
                svg.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="24" fill="{COLORS[stage]}"><title>{stage} {ms:.0f} ms</title></rect>')
                if w > 38:
                    svg.append(f'<text x="{x + 3:.1f}" y="{y + 16}" fill="white" font-size="10">{stage}</text>')
            x += w
        svg.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{total:.0f} ms</text>')
    legend_y = 60 + row * len(bars) + 10
    x = 10
    for stage, color in COLORS.items():
        svg.append(f'<rect x="{x}" y="{legend_y}" width="12" height="12" fill="{color}"/><text x="{x + 16}" y="{legend_y + 11}">{stage}</text>')
        x += 30 + 7 * len(stage)
    svg.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(svg))


if __name__ == "__main__":
    main()
