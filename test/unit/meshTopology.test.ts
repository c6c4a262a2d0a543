import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { checkMesh, MAX_MESH_HOSTS, meshPath, meshTopology, meshTunnels } from "../../scripts/mesh-topology";

const REPO = path.resolve(__dirname, "..", "..");

for (const n of [2, 3, 4, 6, MAX_MESH_HOSTS]) {
    test(`full mesh of ${n} hosts: valid, every pair once, one shared FOU port per host`, () => {
        const topo = checkMesh(n);
        assert.deepEqual(
            topo.hosts.map((h) => [h.name, h.address]),
            Array.from({ length: n }, (_, i) => [`k${i + 1}`, `198.51.100.${151 + i}`]),
        );
        assert.equal(topo.tunnels.length, meshTunnels(n));
        const pairs = new Set(topo.tunnels.map((t) => t.ends.map((e) => e.host).sort().join(" ")));
        assert.equal(pairs.size, meshTunnels(n), "a pair appears twice");
        for (const t of topo.tunnels) {
            const [a, b] = t.ends;
            assert.equal(t.name, `${a.host}-${b.host}`);
            assert.deepEqual([t.protocol, t.encap, t.port, t.sport, t.persist], ["ipip", "fou", 5555, "auto", false]);
            assert.deepEqual([a.ifname, b.ifname], [`fto${b.host}`, `fto${a.host}`]);
            for (const e of t.ends) assert.ok(e.ifname.length <= 15, e.ifname);
        }
        const gwips = topo.tunnels.flatMap((t) => t.ends.map((e) => e.gwip));
        assert.equal(new Set(gwips).size, gwips.length, "a GWIP appears twice");
        assert.ok(gwips.every((g) => g.startsWith("10.10.10.")));
        // The first tunnel is the guide's: k1-k2 with 10.10.10.1 and 10.10.10.2.
        assert.deepEqual(topo.tunnels[0].ends.map((e) => [e.host, e.ifname, e.gwip]), [
            ["k1", "ftok2", "10.10.10.1"],
            ["k2", "ftok1", "10.10.10.2"],
        ]);
        assert.deepEqual(
            topo.ports.map((p) => [p.host, p.port, p.encap, p.ipproto, p.tunnels.length]),
            topo.hosts.map((h) => [h.name, 5555, "fou", 4, n - 1]),
        );
    });
}

for (const n of [2, 3, 4, 6]) {
    test(`${meshPath(n)} is the generator's output`, () => {
        assert.equal(readFileSync(path.join(REPO, meshPath(n)), "utf8"), meshTopology(n));
    });
}

test("mesh sizes outside 2..16 or not integers are refused", () => {
    for (const n of [0, 1, MAX_MESH_HOSTS + 1, 2.5, NaN]) {
        assert.throws(() => meshTopology(n), { name: "RangeError", message: `a full mesh needs an integer number of hosts from 2 to ${MAX_MESH_HOSTS} (got ${n})` });
    }
});
