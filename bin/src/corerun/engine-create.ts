/**
 * The entry of corerun's third bundle, for an engine's create (see engine-call.ts): the create
 * path (oci-create.ts, the tools it starts, the teardown of a create that fails) without the
 * network, image and detached containers' code, and apart from the engine's other calls, whose
 * bundle would be a third larger with it. Anything but create's runc form goes to the whole
 * corerun, in this process.
 */
import { runWholeBundle } from "@corerun/cli";
import { runOci } from "./oci-calls.ts";
import { create } from "./oci-create.ts";
import { engineCall } from "./engine-call.ts";

// The same code as the whole corerun's create, for any command line of its form.
const call = engineCall(process.argv.slice(2), { create: { spec: create } });
if (call) void runOci(call.spec, call.rest, call.globals);
else runWholeBundle();
