import * as pulumi from "@pulumi/pulumi";

/**
 * The `__provider` text of a Node.js dynamic resource, written from a factory's own source rather
 * than by `pulumi.runtime.serializeFunction`.
 *
 * The SDK's dynamic provider host (`pulumi-resource-pulumi-nodejs`) loads that text as a CommonJS
 * module and calls its `handler()` for the provider; every dynamic resource's state holds such a
 * text, and the host reads it for refresh and destroy, so the format cannot change under a stack.
 * Serializing a closure costs ~0.3 s of every program run (the first call starts a V8 inspector
 * session and parses each captured function) and wraps each function in a scope object; a
 * factory's source is taken once.
 *
 * So the factory must be self-contained: it names nothing outside itself but the helpers it is
 * given (Node's built-in modules, and packages the program depends on, come from `require` inside
 * it). Each helper is a named function declaration of the factory's file (a call of an imported
 * function compiles to a property of its module's object, which the text lacks), emitted after
 * the handler as a declaration of the module, so the factory and the helpers call each other by
 * name as they do in their file, and the same rules hold for them. Their text is stored with every
 * resource, twice (inputs and outputs): its lines lose their indentation and their full-line `//`
 * comments, so no string in it may span lines, and no comment may follow code.
 */
export function providerModule(factory: () => object, parts: ProviderModuleParts = {}): string {
    const helpers = parts.helpers ?? [];
    const names = new Set<string>([factory.name]);
    const declarations = helpers.map((helper) => {
        const text = helper.toString();
        const named = /^[A-Za-z_$][\w$]*$/.test(helper.name);
        if (!named || !new RegExp(`^(async\\s+)?function\\s+${helper.name.replace(/\$/g, "\\$")}\\s*\\(`).test(text)) {
            throw new Error(`providerModule: a helper must be a named function declaration (got ${JSON.stringify(text.slice(0, 60))})`);
        }
        if (names.has(helper.name)) {
            throw new Error(`providerModule: ${helper.name} is given twice`);
        }
        names.add(helper.name);
        return `${stored(text)}\n`;
    });
    const member = parts.member === undefined ? "" : `.${parts.member}`;
    return `exports.handler = () => (${stored(factory.toString())})()${member};\n${declarations.join("")}`;
}

/** What a provider module holds besides its factory. */
export interface ProviderModuleParts {
    /** The member of the factory's result that is the provider; unset: the result itself. */
    readonly member?: string;
    /** Functions the factory (or another helper) calls by name; each must be self-contained too. */
    readonly helpers?: readonly ((...args: never[]) => unknown)[];
}

/** A function's text as stored: without indentation and full-line `//` comments. */
function stored(text: string): string {
    return text.replace(/\n[ \t]*\/\/[^\n]*/g, "").replace(/\n[ \t]+/g, "\n");
}

/**
 * A dynamic resource whose provider is such a text: what `pulumi.dynamic.Resource(provider, name,
 * props, opts, "fou", type)` registers (type `pulumi-nodejs:dynamic/fou:<type>`, the text as
 * `__provider`), without serializing a provider object.
 */
export class TextDynamicResource extends pulumi.CustomResource {
    constructor(providerText: string, type: string, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
        super(`pulumi-nodejs:dynamic/fou:${type}`, name, { ...props, __provider: providerText }, opts);
    }
}
