import { createProjectGraphAsync } from "@nx/devkit";
import nx from "@nx/eslint-plugin";
import tseslint from "typescript-eslint";

// Run from the eslint CLI, the boundaries rule reads only Nx's cached project graph and, when
// there is none (fresh clone, after `nx reset`), prints a warning and skips itself: lint would pass
// with no boundary checked. Building the graph here makes `eslint .` enough on its own and keeps
// the cache in step with the imports being linted.
const graph = await createProjectGraphAsync({ exitOnError: true });

// A constraint matches only tagged projects, so a project without a type tag would escape the
// koffi ban. Refuse to lint until every project has exactly one.
const TYPES = ["type:syscall", "type:lib", "type:tool", "type:e2e"];
const untagged = Object.values(graph.nodes).filter((p) => (p.data.tags ?? []).filter((t) => TYPES.includes(t)).length !== 1);
if (untagged.length) {
  throw new Error(`every project needs exactly one of the tags ${TYPES.join(", ")} in its project.json: ${untagged.map((p) => p.data.root).join(", ")}`);
}

// The package and any file inside it (koffi/package.json, koffi/src/...).
const KOFFI = ["koffi", "koffi/*"];

/**
 * The rule that matters here is @nx/enforce-module-boundaries: tools build on libraries, libraries
 * on each other and on libs/syscall, and libs/syscall on nothing internal. Only libs/syscall may
 * import koffi, so every raw libc call goes through its `check()` and errno is read in one place.
 */
export default tseslint.config(
  { ignores: ["**/dist/", "**/build/", "**/node_modules/", "**/.nx/", "tools/rootfs/out/"] },
  {
    files: ["**/*.ts"],
    extends: [tseslint.configs.recommended],
    languageOptions: { parser: tseslint.parser, sourceType: "module" },
    // Unused code is reported without failing lint while work is in progress.
    rules: { "@typescript-eslint/no-unused-vars": ["warn", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }] },
  },
  {
    files: ["**/*.ts", "**/*.js", "**/*.mjs"],
    plugins: { "@nx": nx },
    rules: {
      "@nx/enforce-module-boundaries": [
        "error",
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: "type:syscall", onlyDependOnLibsWithTags: [] },
            { sourceTag: "type:lib", onlyDependOnLibsWithTags: ["type:lib", "type:syscall"], bannedExternalImports: KOFFI },
            { sourceTag: "type:tool", onlyDependOnLibsWithTags: ["type:lib", "type:syscall"], bannedExternalImports: KOFFI },
            { sourceTag: "type:e2e", onlyDependOnLibsWithTags: ["type:lib", "type:syscall", "type:tool"], bannedExternalImports: KOFFI },
          ],
        },
      ],
    },
  },
);
