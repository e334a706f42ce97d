/**
 * corerun's second bundle (engine.ts): the commands an engine runs most on a container it
 * created, `state`, `start` and `delete` of an OCI container in runc's form, built from the same
 * modules as the whole corerun but without the code of the others (create, run, images,
 * networks, detached containers): 165 of its 612 kB, which a call loads in ~2-2.5 ms less. The
 * third (engine-create.ts) holds `create` (228 kB: a create loads in ~1.6 ms less), apart, so
 * that the other calls do not load its code. The loader (tools/build.mjs) runs such a bundle for
 * a command line whose first word naming a kind of command is one of its own. It runs the command
 * only when the whole corerun would run the same code for it (engineCall): runc's form, and for
 * start and delete, whose code here lacks parts, a container this code covers (COMMANDS).
 * Anything else (a `run -d` container's start, --help of those two, a global option runc's form
 * refuses) goes to the whole corerun, in the same process, before anything has run.
 */
import { defineTool, parseToolArgv, type ToolSpec } from "@corerun/cli";
import { stateRoot, type State } from "@corerun/state";
import { del, ociWords, splitGlobals, startSpec, state, type Globals } from "./oci-calls.ts";
import { findContainer, findEach, startOci } from "./oci.ts";

const start = defineTool({
  ...startSpec,
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const found = findEach(root, ctx.tail);
    if (await startOci(root, found, ctx.flags.attach ?? false)) return 0;
    // Found an OCI container before runTool began, and another container now (its id reused).
    throw new Error(`container ${ctx.tail.join(" ")} is no longer an OCI container; run corerun start again`);
  },
});

/**
 * The commands, and for those whose code differs from the whole corerun's for some containers,
 * which containers (found by the id it names) this bundle takes.
 */
export type EngineCommands = Record<string, { spec: ToolSpec; takes?: { exact: boolean; container: (s: State | undefined) => boolean } }>;

export const COMMANDS: EngineCommands = {
  // The same code in both bundles, for any container or none.
  state: { spec: state },
  // The OCI form only: the other (a run -d container's) is the whole corerun's.
  start: { spec: start, takes: { exact: false, container: (s) => s?.oci !== undefined } },
  // A bridge network's teardown and an image's are not in this bundle (teardownParts); an
  // unknown id is refused, or with --force passed over, by the same code in both.
  delete: { spec: del, takes: { exact: true, container: (s) => s === undefined || (s.config.network.mode !== "bridge" && s.image === undefined) } },
};

/** The command and words a bundle of `commands` runs as the whole corerun would, or undefined. */
export function engineCall(argv: readonly string[], commands: EngineCommands = COMMANDS): { spec: ToolSpec; rest: string[]; globals: Globals } | undefined {
  try {
    const oci = splitGlobals(argv, Object.keys(commands));
    if (!oci || "version" in oci) return undefined;
    const { spec, takes } = commands[oci.sub]!;
    if (takes) {
      const { split } = parseToolArgv(spec, ociWords(spec, oci.rest, oci.globals));
      if (split.help || split.tail.length !== 1 || split.flags.attach) return undefined;
      if (!takes.container(findContainer(stateRoot(split.values.root?.at(-1)), split.tail[0]!, takes.exact))) return undefined;
    }
    return { spec, rest: oci.rest, globals: oci.globals };
  } catch {
    // A refusal (a bad option, an unreadable state root): the whole corerun reports it.
    return undefined;
  }
}

