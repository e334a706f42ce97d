import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkReference, checkSymlink, classifyEntry, entryPath, hardlinkTarget, opaqueEntry, parseReference, whiteoutEntry } from "./paths.ts";

describe("entryPath", () => {
  test("drops ./ and trailing slashes; the root is \"\"", () => {
    assert.equal(entryPath("./etc/passwd", "l"), "etc/passwd");
    assert.equal(entryPath("usr/bin/", "l"), "usr/bin");
    assert.equal(entryPath("./", "l"), "");
    assert.equal(entryPath("a//b/./c", "l"), "a/b/c");
  });
  test("refuses absolute names and .. components, naming the entry", () => {
    assert.throws(() => entryPath("/etc/passwd", "f: layer 1/1"), /^UsageError: f: layer 1\/1: entry "\/etc\/passwd" is an absolute path; refused/);
    assert.throws(() => entryPath("a/../../b", "l"), /entry "a\/..\/..\/b" climbs out of the layer with \.\./);
    assert.throws(() => entryPath("..", "l"), /climbs out/);
    // Even a .. that would stay inside: a layer has no reason to carry one.
    assert.throws(() => entryPath("a/../b", "l"), /climbs out/);
  });
});

describe("checkSymlink", () => {
  test("absolute targets are container paths and stay", () => {
    checkSymlink("bin/sh", "/bin/busybox", "l");
    checkSymlink("etc/mtab", "/proc/self/mounts", "l");
  });
  test("relative targets inside the layer stay", () => {
    checkSymlink("usr/bin/env", "../../bin/busybox", "l");
    checkSymlink("a", "b/../c", "l");
  });
  test("relative targets that climb above the layer's root are refused", () => {
    assert.throws(() => checkSymlink("usr/bin/x", "../../../etc/shadow", "l"), /symlink "usr\/bin\/x" -> "..\/..\/..\/etc\/shadow" points out of the layer; refused/);
    assert.throws(() => checkSymlink("x", "..", "l"), /points out/);
  });
});

describe("hardlinkTarget", () => {
  test("names another entry of the layer", () => {
    assert.equal(hardlinkTarget("bin/b", "./bin/a", "l"), "bin/a");
    assert.equal(hardlinkTarget("bin/b", "/bin/a", "l"), "bin/a");
  });
  test("refuses .. and the root", () => {
    assert.throws(() => hardlinkTarget("x", "../../etc/passwd", "l"), /hard link "x" -> "..\/..\/etc\/passwd" points out of the layer; refused/);
    assert.throws(() => hardlinkTarget("x", "./", "l"), /points at the layer's root/);
  });
});

describe("whiteouts", () => {
  test(".wh.NAME hides NAME; .wh..wh..opq makes its directory opaque; other .wh..wh. names are skipped", () => {
    assert.deepEqual(classifyEntry("etc/.wh.passwd"), { kind: "whiteout", path: "etc/passwd" });
    assert.deepEqual(classifyEntry(".wh.top"), { kind: "whiteout", path: "top" });
    assert.deepEqual(classifyEntry("var/lib/.wh..wh..opq"), { kind: "opaque", dir: "var/lib" });
    assert.deepEqual(classifyEntry(".wh..wh..opq"), { kind: "opaque", dir: "" });
    assert.deepEqual(classifyEntry("x/.wh..wh.plnk"), { kind: "skip" });
    assert.deepEqual(classifyEntry("etc/passwd"), { kind: "plain" });
    assert.deepEqual(classifyEntry("etc/a.wh.b"), { kind: "plain" });
  });
  test("and back, for commit", () => {
    assert.equal(whiteoutEntry("etc/passwd"), "etc/.wh.passwd");
    assert.equal(whiteoutEntry("top"), ".wh.top");
    assert.equal(opaqueEntry("var/lib"), "var/lib/.wh..wh..opq");
    for (const p of ["etc/passwd", "top", "a/b/c"]) assert.deepEqual(classifyEntry(whiteoutEntry(p)), { kind: "whiteout", path: p });
  });
});

describe("parseReference", () => {
  test("NAME gets the tag latest; NAME:TAG, paths and registry hosts with ports", () => {
    assert.equal(parseReference("busybox"), "busybox:latest");
    assert.equal(parseReference("busybox:1.36"), "busybox:1.36");
    assert.equal(parseReference("library/alpine:3.20"), "library/alpine:3.20");
    assert.equal(parseReference("localhost:5000/app"), "localhost:5000/app:latest");
    assert.equal(parseReference("quay.io/org/app:v1.0-rc_1"), "quay.io/org/app:v1.0-rc_1");
  });
  test("refuses capitals in names, digests, empty parts and bad tags", () => {
    for (const bad of ["Busybox", "app@sha256:00", "a//b", "app:", "app:-x", ":tag", "/app", "app/"]) assert.equal(parseReference(bad), undefined, bad);
    assert.throws(() => checkReference("Bad", "--name"), /--name "Bad" is not an image reference; use NAME\[:TAG\]/);
  });
});
