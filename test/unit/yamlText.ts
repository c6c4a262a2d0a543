/** A YAML text written indented in the test: drops the first line break and the common indentation. */
export function y(strings: TemplateStringsArray, ...values: unknown[]): string {
    const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
    const lines = raw.replace(/^\n/, "").replace(/\n[ ]*$/, "\n").split("\n");
    const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
    return lines.map((l) => l.slice(indent)).join("\n");
}
