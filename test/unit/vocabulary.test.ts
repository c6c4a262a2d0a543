/**
 * The tunnel vocabulary (lib/vocabulary.ts): each rule at its bounds and against hostile values,
 * and the one check of a tunnel's options naming problems by the caller's path.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { FouInputError, checkHostName, checkIfname } from "../../lib/validate";
import {
    ENCAPS,
    IFNAME_PREFIX,
    IPPROTO,
    MAX_HOST_NAME,
    MAX_IFNAME,
    MODULES,
    MTU_FLOOR,
    MTU_MAX,
    PROTOCOLS,
    TUNNEL_OPTION_DEFAULTS,
    TunnelOptionValues,
    defaultIfname,
    innerFamily,
    isEncap,
    isProtocol,
    mtuMin,
    portIpproto,
    problemText,
    tunnelOptionProblems,
} from "../../lib/vocabulary";

/** Values no rule may take: other types, near misses, prototype keys, control characters. */
const HOSTILE: unknown[] = [undefined, null, true, 0, 4, NaN, "", " ", "IPIP", "ipip ", "ipip\n", "ipip;reboot", "constructor", "__proto__", "toString", "hasOwnProperty", {}, [], ["ipip"], { ipip: 4 }];

/** The messages of `values`, named as a component names them. */
function messages(values: TunnelOptionValues): string[] {
    return tunnelOptionProblems(values, (f) => `T x: ${f}`).map(problemText);
}

test("protocols, their IP protocol numbers, inner families and modules", () => {
    assert.deepEqual(PROTOCOLS, ["ipip", "sit", "gre"]);
    assert.deepEqual(IPPROTO, { ipip: 4, sit: 41, gre: 47 });
    assert.deepEqual(PROTOCOLS.map(innerFamily), [4, 6, 4]);
    assert.deepEqual(MODULES, { ipip: ["fou", "ipip"], sit: ["fou", "sit"], gre: ["fou", "ip_gre"] });
    for (const p of PROTOCOLS) {
        assert.ok(isProtocol(p), p);
        assert.equal(MODULES[p][0], "fou", `${p} loads fou first`);
    }
});

test("encaps are fou and gue", () => {
    assert.deepEqual(ENCAPS, ["fou", "gue"]);
    assert.ok(ENCAPS.every(isEncap));
});

test("a FOU port is bound to its protocol's number, a GUE port to none", () => {
    assert.deepEqual(PROTOCOLS.map((p) => portIpproto("fou", p)), [4, 41, 47]);
    assert.deepEqual(PROTOCOLS.map((p) => portIpproto("gue", p)), [undefined, undefined, undefined]);
});

test("no hostile value is a protocol or an encap", () => {
    for (const v of [...HOSTILE, "vxlan", "FOU", "gue\0", "fou gue"]) {
        assert.equal(isProtocol(v), false, JSON.stringify(v));
        assert.equal(isEncap(v), false, JSON.stringify(v));
    }
});

test("the smallest MTU follows what the protocol carries: 68 for IPv4, 1280 for IPv6 (sit)", () => {
    assert.deepEqual(PROTOCOLS.map(mtuMin), [68, 1280, 68]);
    assert.equal(MTU_FLOOR, 68);
    assert.equal(MTU_MAX, 65535);
});

test("the default interface is fto<peer>, and the longest host name still fits IFNAMSIZ", () => {
    assert.equal(defaultIfname("k2"), "ftok2");
    assert.equal(MAX_IFNAME, 15);
    assert.ok(IFNAME_PREFIX.length + MAX_HOST_NAME <= MAX_IFNAME);
    const longest = "k" + "1".repeat(MAX_HOST_NAME - 1);
    assert.equal(checkHostName("h", longest), undefined);
    assert.equal(checkIfname("i", defaultIfname(longest)), undefined);
    assert.match(checkHostName("h", longest + "1") ?? "", /^h must be 1-12 characters of a-z, 0-9 and '-', starting with a letter/);
});

test("the defaults pass the check, and an empty set of options has no problem", () => {
    assert.deepEqual(messages(TUNNEL_OPTION_DEFAULTS), []);
    assert.deepEqual(messages({}), []);
    assert.deepEqual(messages({ protocol: undefined, mtu: undefined }), [], "undefined is absent");
});

test("protocol and encap: one of the set, whatever else is given", () => {
    for (const v of HOSTILE.filter((v) => v !== undefined)) {
        assert.deepEqual(messages({ protocol: v }), [`T x: protocol must be one of ipip, sit, gre (got ${JSON.stringify(v)})`]);
        assert.deepEqual(messages({ encap: v }), [`T x: encap must be one of fou, gue (got ${JSON.stringify(v)})`]);
    }
});

test("port: an integer from 1 to 65535", () => {
    for (const ok of [1, 5555, 65535]) {
        assert.deepEqual(messages({ port: ok }), [], String(ok));
    }
    for (const bad of [0, -1, 65536, 1.5, "5555", Infinity, NaN, null, true, [5555]]) {
        assert.deepEqual(messages({ port: bad }), [`T x: port must be a UDP port number from 1 to 65535 (got ${JSON.stringify(bad)})`]);
    }
});

test("sport: \"auto\" or a port", () => {
    for (const ok of ["auto", 1, 5600, 65535]) {
        assert.deepEqual(messages({ sport: ok }), [], String(ok));
    }
    for (const bad of ["AUTO", "auto ", "5600", 0, 65536, 2.5, null, false]) {
        assert.deepEqual(messages({ sport: bad }), [`T x: sport must be "auto" or a UDP port number from 1 to 65535 (got ${JSON.stringify(bad)})`]);
    }
});

test("ttl: an integer from 1 to 255", () => {
    for (const ok of [1, 64, 255]) {
        assert.deepEqual(messages({ ttl: ok }), [], String(ok));
    }
    for (const bad of [0, 256, -1, 1.5, "255", null]) {
        assert.deepEqual(messages({ ttl: bad }), [`T x: ttl must be an integer from 1 to 255 (got ${JSON.stringify(bad)})`]);
    }
});

test("mtu: 68 to 65535, and 1280 up for sit", () => {
    for (const [protocol, ok] of [["ipip", 68], ["gre", 68], ["ipip", 65535], ["sit", 1280], ["sit", 65535]] as const) {
        assert.deepEqual(messages({ protocol, mtu: ok }), [], `${protocol} ${ok}`);
    }
    assert.deepEqual(messages({ protocol: "ipip", mtu: 67 }), ["T x: mtu must be an integer from 68 to 65535 (got 67)"]);
    assert.deepEqual(messages({ protocol: "gre", mtu: 65536 }), ["T x: mtu must be an integer from 68 to 65535 (got 65536)"]);
    assert.deepEqual(messages({ protocol: "sit", mtu: 1279 }), ["T x: mtu 1279 is below 1280, the smallest MTU IPv6 allows, and a sit tunnel carries IPv6; use 1280 to 65535"]);
    // Beyond every protocol's bounds: the range of the protocol given.
    assert.deepEqual(messages({ protocol: "sit", mtu: 40 }), ["T x: mtu must be an integer from 1280 to 65535 (got 40)"]);
    assert.deepEqual(messages({ protocol: "sit", mtu: "1400" }), ['T x: mtu must be an integer from 1280 to 65535 (got "1400")']);
    // Without a valid protocol the MTU is held to the widest bounds only.
    assert.deepEqual(messages({ mtu: 1000 }), []);
    assert.deepEqual(messages({ protocol: "constructor", mtu: 1000 }), ['T x: protocol must be one of ipip, sit, gre (got "constructor")']);
    assert.deepEqual(messages({ mtu: 1.5 }), ["T x: mtu must be an integer from 68 to 65535 (got 1.5)"]);
});

test("every problem at once, in the order protocol, encap, port, sport, mtu, ttl, named by the caller", () => {
    const all = { ttl: 0, mtu: 0, sport: 0, port: 0, encap: "x", protocol: "y" };
    const problems = tunnelOptionProblems(all, (f) => `tunnels[3].${f}`);
    assert.deepEqual(
        problems.map((p) => [p.field, p.path]),
        [
            ["protocol", "tunnels[3].protocol"],
            ["encap", "tunnels[3].encap"],
            ["port", "tunnels[3].port"],
            ["sport", "tunnels[3].sport"],
            ["mtu", "tunnels[3].mtu"],
            ["ttl", "tunnels[3].ttl"],
        ],
    );
    assert.equal(problems[4].message, "must be an integer from 68 to 65535 (got 0)");
});

test("the caller shows a rejected value its own way", () => {
    const shown = (f: string) => (f === "mtu" ? "1000 (from defaults.mtu, line 5)" : "a mapping");
    assert.deepEqual(
        tunnelOptionProblems({ protocol: "sit", mtu: 1000 }, (f) => f, shown).map((p) => p.message),
        ["1000 (from defaults.mtu, line 5) is below 1280, the smallest MTU IPv6 allows, and a sit tunnel carries IPv6; use 1280 to 65535"],
    );
    assert.deepEqual(tunnelOptionProblems({ encap: {} }, (f) => f, shown).map((p) => p.message), ["must be one of fou, gue (got a mapping)"]);
});

test("FouInputError is a Pulumi RunError without importing the SDK", () => {
    const e = new FouInputError(["a", "b"]);
    assert.ok(pulumi.RunError.isInstance(e));
    assert.equal(e.message, "invalid input:\n  - a\n  - b");
    assert.equal(new FouInputError(["only"]).message, "only");
});
