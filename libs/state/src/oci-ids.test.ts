import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { findOciContainer, OCI_IDS_FILE, OCI_SLOTS, ociIds, ociIdTaken } from "./oci-ids.ts";
import type { ContainerConfig } from "./schema.ts";
import { createContainer, ID_PATTERN } from "./index.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-oci-ids-test-"));
after(() => {
  // Only ever the directory this file created.
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-oci-ids-test-")) rmSync(base, { recursive: true, force: true });
});
let n = 0;
const freshRoot = () => join(base, `root${n++}`);

const config = (name: string | undefined): ContainerConfig => ({
  rootfs: "/srv/rootfs", command: ["sh"], hostname: undefined, env: [], cwd: "/", volumes: [], network: { mode: "none", ports: [] }, name, limits: {}, cgroupParent: "corerun",
});
const oci = { bundle: "/b", ociVersion: "1.2.0", annotations: {}, poststop: [], startContainer: [], poststart: [] };
/** An OCI container as create makes it: named by its OCI id, in its first free slot. */
const ociContainer = (root: string, ociId: string) => createContainer(root, config(ociId), { oci }, undefined, ociIds(ociId));

describe("OCI containers' derived ids", () => {
  test("FNV-1a 64 of the OCI id, then of the id, a NUL and k: distinct, 12 hex digits, the same every time", () => {
    // FNV-1a 64 of "a" is af63dc4c8601ec8c (the published test vector).
    assert.equal(ociIds("a")[0], "af63dc4c8601");
    const ids = ociIds("80b1ff0aca1d8b4e80016dbdefc7e7200c6583b0f3139fb0f0673764b72c8d3e");
    assert.equal(ids.length, OCI_SLOTS);
    assert.equal(new Set(ids).size, OCI_SLOTS);
    assert.ok(ids.every((id) => ID_PATTERN.test(id)));
    assert.deepEqual(ociIds("80b1ff0aca1d8b4e80016dbdefc7e7200c6583b0f3139fb0f0673764b72c8d3e"), ids);
    assert.notDeepEqual(ociIds("web"), ociIds("web2"));
  });

  test("a container is found in its slot; a slot held by another goes to the next one", () => {
    const root = freshRoot();
    const a = ociContainer(root, "a");
    assert.equal(a.id, ociIds("a")[0]);
    assert.equal(findOciContainer(root, "a")?.id, a.id);
    // A container whose id is the first choice of "b" (as a random id can be), then "b" itself.
    const squatter = createContainer(root, config(undefined), {}, undefined, [ociIds("b")[0]!]);
    const b = ociContainer(root, "b");
    assert.equal(b.id, ociIds("b")[1]);
    assert.equal(findOciContainer(root, "b")?.id, b.id);
    assert.equal(findOciContainer(root, squatter.id), undefined);
    assert.equal(findOciContainer(root, "c"), undefined);
  });

  test("a container in the slot that is not an OCI one, or named otherwise, is not the OCI container", () => {
    const root = freshRoot();
    createContainer(root, config("d"), {}, undefined, [ociIds("d")[0]!]);
    assert.equal(findOciContainer(root, "d"), undefined);
  });

  test("all slots taken: refused in one line naming the ids", () => {
    const root = freshRoot();
    for (const id of ociIds("e")) createContainer(root, config(undefined), {}, undefined, [id]);
    assert.throws(() => ociContainer(root, "e"), (e: unknown) => e instanceof UsageError && e.message.includes(ociIds("e")[7]!) && !e.message.includes("\n"));
  });
});

describe("ociIdTaken", () => {
  test("in a root with derived ids only: the slots answer, and the root is marked so at the first create", () => {
    const root = freshRoot();
    ociContainer(root, "a");
    assert.equal(existsSync(join(root, OCI_IDS_FILE)), false);
    assert.equal(ociIdTaken(root, "a"), true);
    assert.equal(ociIdTaken(root, "b"), false);
    assert.equal(existsSync(join(root, OCI_IDS_FILE)), true);
    // From now on a name held outside the slots is not looked for.
    createContainer(root, config("c"));
    assert.equal(ociIdTaken(root, "c"), false);
  });

  test("before the mark, a container of that name of any kind takes the id, as before derived ids", () => {
    const root = freshRoot();
    createContainer(root, config("web"));
    assert.equal(ociIdTaken(root, "web"), true);
  });

  test("an OCI container with a random id (made by an earlier corerun) keeps every create reading all states", () => {
    const root = freshRoot();
    createContainer(root, config("old"), { oci });
    assert.equal(ociIdTaken(root, "old"), true);
    assert.equal(ociIdTaken(root, "new"), false);
    assert.equal(existsSync(join(root, OCI_IDS_FILE)), false);
  });
});
