import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import type { TunnelHost } from "../../components/host";
import type { Topology } from "../../topology";

/** A resource as the mocked engine saw it, with the dependencies its options named. */
export interface Recorded {
    readonly type: string;
    readonly name: string;
    readonly inputs: Record<string, any>;
    readonly parent?: string;
    readonly dependsOn: string[];
}

export const recorded: Recorded[] = [];
const pendingDeps = new Map<string, { parent?: string; dependsOn: string[] }>();

/** Plausible command output, so code that parses stdout sees what the real scripts print. */
function fakeStdout(name: string, create: string | undefined): string {
    if (create?.includes("tcpdump")) {
        return '{"from":"10.10.10.1","to":"10.10.10.2","sent":3,"received":3,"udpToPeer":3,"udpFromPeer":3,"sample":"x","rounds":1,"measuredAt":"2026-12-01T00:00:00Z"}';
    }
    if (create?.includes("ssh-keygen")) {
        return "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\nssh-ed25519 AAAA fou-tunnel";
    }
    if (create?.includes('echo "device=$dev"')) {
        return "device=eth0\naddress=198.51.100.151"; // SshHost's first command
    }
    if (create?.includes("vm.sh start")) {
        return `{"name":"${name}","pid":1,"hostKey":"ssh-ed25519 AAAAhost"}`;
    }
    return `mtu=1472\ninstance=${name}`;
}

/**
 * A host step's scripts travel in its stdin (components/host.ts stepProgram: the library's
 * functions, `fou_create() {…}`, `fou_delete() {…}`, a dispatch) behind a short command line.
 * Tests read them where they read any command's: as `create` and `delete`, each with the library
 * in front (the object's own shell lives there), decoded here in one place, with the command
 * lines as `createLine` and `deleteLine` and the program as `stdin`. Any other command is
 * recorded as it is.
 */
export function decodeStep(inputs: Record<string, any>): Record<string, any> {
    const line = /^(sudo -n )?\/bin\/sh -s create$/;
    if (typeof inputs.create !== "string" || !line.test(inputs.create) || typeof inputs.stdin !== "string") return inputs;
    const stdin: string = inputs.stdin;
    const createAt = stdin.startsWith("fou_create() {\n") ? 0 : stdin.indexOf("\nfou_create() {\n") + 1;
    const library = createAt > 0 ? stdin.slice(0, createAt) : "";
    const body = (fn: string): string | undefined => {
        const start = stdin.indexOf(`${fn}() {\n`, createAt);
        if (start < 0 || (start > 0 && stdin[start - 1] !== "\n")) return undefined;
        const from = start + `${fn}() {\n`.length;
        const ends = [stdin.indexOf("\n}\nfou_delete() {\n", from), stdin.indexOf("\n}\ncase ${1-} in\n", from)].filter((i) => i >= 0);
        return library + stdin.slice(from, Math.min(...ends));
    };
    const del = body("fou_delete");
    const { delete: deleteLine, create: createLine, ...rest } = inputs;
    return { ...rest, createLine, create: body("fou_create"), ...(deleteLine === undefined ? {} : { deleteLine }), ...(del === undefined ? {} : { delete: del }) };
}

pulumi.runtime.setMocks(
    {
        newResource(args) {
            const deps = pendingDeps.get(args.name) ?? { dependsOn: [] };
            const inputs = decodeStep(args.inputs);
            recorded.push({ type: args.type, name: args.name, inputs, ...deps });
            const state = { ...args.inputs };
            if (args.type.startsWith("command:")) {
                state.stdout = fakeStdout(args.name, inputs.create);
                state.stderr = "";
            }
            return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
    },
    "fou-tunnel",
    "unit",
    false,
);

// Mocks do not see resource options; a transformation does. Tests build their resources under
// this root so every descendant's dependsOn is recorded.
const recordDeps: pulumi.ResourceTransformation = (t) => {
    const deps = t.opts.dependsOn;
    const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
    pendingDeps.set(t.name, {
        parent: (t.opts.parent as any)?.__name,
        dependsOn: list.map((r) => (r as any).__name as string),
    });
    return undefined;
};
export const root = new pulumi.ComponentResource("test:index:Root", "root", {}, { transformations: [recordDeps] });

/** Resolves an output in tests. */
export function valueOf<T>(o: pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

/** Lets pending registrations reach the mocks. */
export function settle(): Promise<void> {
    return new Promise((r) => setTimeout(r, 50));
}

/**
 * A TunnelHost for each host of a topology, on eth0 at its underlay address, as the tests'
 * topologies declare them; HOST adjusts one (an ssh login, sudo).
 */
export function tunnelHostsOf(topology: Topology, host: (h: Topology["hosts"][number], t: TunnelHost) => TunnelHost = (_, t) => t): Record<string, TunnelHost> {
    return Object.fromEntries(
        topology.hosts.map((h) => [h.name, host(h, { name: h.name, underlayAddress: h.address!, device: "eth0", connection: { host: h.address! } })]),
    );
}

/** The recorded resource of that name; a test fails naming the ones there are. */
export function named(name: string): Recorded {
    const r = recorded.find((x) => x.name === name);
    assert.ok(r, `no resource named ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
    return r;
}
