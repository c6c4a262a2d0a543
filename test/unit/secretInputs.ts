/**
 * Secret inputs as the mocks see them: Pulumi wraps a secret value in an object keyed by its
 * secret signature. Tests look inside with `plain` and ask whether a value is wrapped with
 * `isSecretInput`.
 */

/** The key under which the Pulumi SDK marks a serialized secret. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** The inputs with Pulumi's secret wrapper removed. */
export function plain(v: any): any {
    if (v && typeof v === "object" && SECRET_SIG in v) {
        return plain(v.value);
    }
    if (Array.isArray(v)) {
        return v.map(plain);
    }
    if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    }
    return v;
}

export const isSecretInput = (v: unknown) => typeof v === "object" && v !== null && SECRET_SIG in v;
