/** Figures and tables for the benches: medians and ranges, Pulumi's summary lines, a line fit. */

export interface Spread {
    readonly n: number;
    readonly median: number;
    readonly min: number;
    readonly max: number;
}

/** Median (the mean of the middle two for an even count), min and max; undefined for no values. */
export function spread(values: readonly number[]): Spread | undefined {
    if (values.length === 0) return undefined;
    const v = [...values].sort((a, b) => a - b);
    const mid = v.length >> 1;
    const median = v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
    return { n: v.length, median, min: v[0], max: v[v.length - 1] };
}

/** "17.2 (16.9–17.8)"; one value alone, "17.2"; nothing, "–". */
export function fmtSpread(s: Spread | undefined, digits = 1): string {
    if (!s) return "–";
    const f = (x: number) => x.toFixed(digits);
    return s.n === 1 || s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** Columns aligned with spaces; the first column left-aligned, the others right-aligned; empty columns dropped. */
export function table(header0: readonly string[], rows0: readonly (readonly string[])[]): string {
    const keep = header0.map((h, i) => h !== "" || rows0.some((r) => (r[i] ?? "") !== ""));
    const header = header0.filter((_, i) => keep[i]);
    const rows = rows0.map((r) => header0.map((_, i) => r[i] ?? "").filter((_, i) => keep[i]));
    const all = [header, ...rows];
    const width = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
    const line = (r: readonly string[]) =>
        r.map((c, i) => (i === 0 ? (c ?? "").padEnd(width[i]) : (c ?? "").padStart(width[i]))).join("  ").trimEnd();
    return [line(header), width.map((w) => "-".repeat(w)).join("  ").trimEnd(), ...rows.map(line)].join("\n");
}

/**
 * What Pulumi's text output says it did: the lines of its last "Resources:" block ("+ 3 created",
 * "25 unchanged", joined with ", ") and its "Duration:" (the engine's own time). Missing: undefined.
 */
export function pulumiSummary(stdout: string): { resources?: string; duration?: string } {
    const lines = stdout.split("\n");
    // The last block: `up`/`destroy` without --skip-preview print the preview's first.
    const at = lines.map((l) => /^Resources:\s*$/.test(l.trim())).lastIndexOf(true);
    const resources: string[] = [];
    if (at >= 0) {
        for (const l of lines.slice(at + 1)) {
            if (!/^\s+\S/.test(l)) break;
            resources.push(l.trim());
        }
    }
    const duration = lines.map((l) => /^Duration:\s*(\S.*)$/.exec(l.trim())?.[1]).filter((d) => d !== undefined).pop();
    return { ...(resources.length > 0 ? { resources: resources.join(", ") } : {}), ...(duration ? { duration } : {}) };
}

/** Whether a "Resources:" summary reports anything but unchanged resources. */
export function changedResources(resources: string | undefined): boolean {
    return resources === undefined || resources.split(", ").some((r) => !/^\d+ unchanged$/.test(r));
}

/** Least-squares line y ≈ a + b·x (b = 0 when all x are equal); undefined for no points. */
export function fitLine(points: readonly (readonly [number, number])[]): { a: number; b: number } | undefined {
    if (points.length === 0) return undefined;
    const n = points.length;
    const mx = points.reduce((s, [x]) => s + x, 0) / n;
    const my = points.reduce((s, [, y]) => s + y, 0) / n;
    const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
    const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
    const b = sxx === 0 ? 0 : sxy / sxx;
    return { a: my - b * mx, b };
}
