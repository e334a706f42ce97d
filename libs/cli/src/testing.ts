/**
 * Checks shared by the property tests of every library (imported as @corerun/cli/testing, so
 * that no tool bundle carries node:assert).
 */
import assert from "node:assert/strict";
import { fstatSync } from "node:fs";
import { UsageError } from "./exit.ts";

/** Whether fd is open in this process. */
export function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** A parser either returns or refuses with a one-line UsageError: never another error. */
export function refusesCleanly(fn: () => unknown, input?: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, input === undefined ? String(err) : `${String(err)} for ${JSON.stringify(input)}`);
    assert.ok(!err.message.includes("\n"), err.message);
  }
}
