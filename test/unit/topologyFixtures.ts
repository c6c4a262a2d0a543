/**
 * What the topology parser's tests share: the options of a local and an aws stack, the parse of a
 * text as the file `t.yaml`, the problems it reports, and the table form of the error cases (one
 * file with one problem of interest each, asserted with its file:line:col position).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FouInputError } from "../../lib/validate";
import { Topology, TopologyOptions, parseTopology } from "../../topology";
import { y } from "./yamlText";

export { y };

export const LOCAL: TopologyOptions = { kind: "local", underlay: "198.51.100.1/24" };
export const AWS: TopologyOptions = { kind: "aws" };

export function parse(text: string, options: TopologyOptions = LOCAL): Topology {
    return parseTopology(text, "t.yaml", options);
}

export function problems(text: string, options: TopologyOptions = LOCAL): string[] {
    try {
        parse(text, options);
    } catch (e) {
        assert.ok(e instanceof FouInputError, `not a FouInputError: ${String(e)}`);
        return e.problems;
    }
    assert.fail(`no error for:\n${text}`);
}

/** Asserts that one problem is `<at>: <rule>`, at being `t.yaml:line:col: path`. */
export function rejects(text: string, at: string, rule: RegExp, options: TopologyOptions = LOCAL): string[] {
    const found = problems(text, options);
    const match = found.filter((p) => p.startsWith(at + ": ") && rule.test(p.slice(at.length + 2)));
    assert.ok(match.length > 0, `expected "${at}: ${rule}" among:\n  ${found.join("\n  ")}`);
    return found;
}

export const TWO_HOSTS = y`
    hosts:
      - name: k1
      - name: k2
`;

/** The tunnel of the two hosts, with nothing else set. */
export const T12 = "tunnels:\n  - hosts: [k1, k2]\n";

/** An error case: one file with one problem of interest, asserted with its position. */
export interface Case {
    readonly rule: string;
    readonly text: string;
    /** `t.yaml:line:col: path` */
    readonly at: string;
    readonly says: RegExp;
    readonly options?: TopologyOptions;
}

/** Registers one test per case, named `rejects: <rule>`. */
export function rejectsEach(cases: readonly Case[]): void {
    for (const c of cases) {
        test(`rejects: ${c.rule}`, () => {
            rejects(c.text, c.at, c.says, c.options);
        });
    }
}
