/**
 * The entry of corerun's second bundle, for the commands an engine runs most (see
 * engine-call.ts): it runs the command when it can, else the whole corerun, in this process.
 */
import { runWholeBundle } from "@corerun/cli";
import { runOci } from "./oci-calls.ts";
import { engineCall } from "./engine-call.ts";

const call = engineCall(process.argv.slice(2));
if (call) void runOci(call.spec, call.rest, call.globals);
else runWholeBundle();
