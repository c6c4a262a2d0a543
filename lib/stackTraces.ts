/**
 * The program's stack traces: none are captured unless the user asks for them.
 *
 * The SDK takes `new Error().stack` for every promise it makes (`debuggablePromise`, kept for its
 * promise-leak report): four per output property of every resource, one per RPC and per debug log
 * line, about 60 per remote command. Under `typescript: true`, ts-node's source-map hook formats
 * each of those frames (clones every call site, maps its position, builds a file URL), and nothing
 * reads the text. In a preview of a 10-host mesh (1,238 resources) that formatting is about 30% of
 * the program's CPU, and its garbage a good part of the program's peak memory.
 *
 * With `Error.stackTraceLimit` at 0 those stacks are empty. What the engine is told about each
 * resource does not change: the SDK takes a resource's source position and stack trace with the
 * limit raised for that call. The program's own errors still carry their messages (a bad config
 * is reported by message alone); an unexpected error's stack needs the limit back:
 * `NODE_OPTIONS=--stack-trace-limit=20 pulumi preview`, which this leaves as the user set it.
 */
export function skipUnreadStackTraces(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): boolean {
    const chosen = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--stack[-_]trace[-_]limit(=|$)/.test(a));
    if (chosen) return false;
    Error.stackTraceLimit = 0;
    return true;
}
