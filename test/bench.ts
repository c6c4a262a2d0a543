/**
 * Wall-time benchmark of the main job on a throwaway local stack (TEST-NET-2, its own backend):
 * `up` from nothing, a no-change `up`, and `destroy`, each repeated RUNS times (env, default 1).
 * TOPOLOGY=topologies/mesh3.yaml measures a topology file instead of the guide's two hosts.
 * Prints one JSON line per run and a summary; asserts nothing about the figures.
 *
 *   npm run bench            # or: RUNS=3 TOPOLOGY=topologies/mesh3.yaml npm run bench
 */
import { TestStack } from "./integration/harness";

const NET = {
    localGateway: "198.51.100.1/24",
    localVms: [
        { name: "k1", address: "198.51.100.151" },
        { name: "k2", address: "198.51.100.152" },
    ],
};

async function main(): Promise<void> {
    const runs = Number(process.env.RUNS ?? "1");
    const results: Record<string, number>[] = [];
    for (let i = 0; i < runs; i++) {
        const stack = new TestStack(`bench${i}`);
        try {
            await stack.init(process.env.TOPOLOGY ? { localGateway: NET.localGateway, topology: process.env.TOPOLOGY } : NET);
            const up = await stack.ok(["up", "--yes", "--skip-preview"]);
            const noop = await stack.ok(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
            const destroy = await stack.ok(["destroy", "--yes", "--skip-preview"]);
            const r = { upSeconds: up.seconds, noChangeUpSeconds: noop.seconds, destroySeconds: destroy.seconds };
            results.push(r);
            console.log(JSON.stringify({ run: i + 1, ...r }));
        } finally {
            await stack.pulumi(["destroy", "--yes", "--skip-preview"]);
            await stack.remove();
        }
    }
    const median = (k: string) => {
        const v = results.map((r) => r[k]).sort((a, b) => a - b);
        return v[Math.floor(v.length / 2)];
    };
    console.log(
        JSON.stringify({
            runs,
            medianUpSeconds: median("upSeconds"),
            medianNoChangeUpSeconds: median("noChangeUpSeconds"),
            medianDestroySeconds: median("destroySeconds"),
        }),
    );
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
