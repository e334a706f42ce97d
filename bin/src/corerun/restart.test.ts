import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRestart, restartDelay, restartText } from "./restart.ts";

const run = { exitCode: 1, restartCount: 0, stoppedByUser: false, ranMs: 50, lastDelayMs: 0 };

test("parseRestart takes Docker's four policies and on-failure's count", () => {
  assert.deepEqual(parseRestart("no"), { name: "no", maxRetries: 0 });
  assert.deepEqual(parseRestart("on-failure"), { name: "on-failure", maxRetries: 0 });
  assert.deepEqual(parseRestart("on-failure:2"), { name: "on-failure", maxRetries: 2 });
  assert.deepEqual(parseRestart("always"), { name: "always", maxRetries: 0 });
  assert.deepEqual(parseRestart("unless-stopped"), { name: "unless-stopped", maxRetries: 0 });
  assert.equal(restartText(parseRestart("on-failure:3")), "on-failure:3");
});

test("parseRestart refuses other words, negative counts and counts on other policies", () => {
  assert.throws(() => parseRestart("sometimes"), /--restart sometimes: use no, on-failure/);
  assert.throws(() => parseRestart("on-failure:-1"), /retry count must be a whole number/);
  assert.throws(() => parseRestart("on-failure:x"), /retry count/);
  assert.throws(() => parseRestart("always:3"), /goes only with on-failure/);
  assert.throws(() => parseRestart("on-failure:1:2"), /use no/);
  assert.throws(() => parseRestart(""), /use no/);
});

test("restartDelay follows the policy", () => {
  assert.equal(restartDelay(undefined, run), undefined);
  assert.equal(restartDelay({ name: "no", maxRetries: 0 }, run), undefined);
  assert.equal(restartDelay({ name: "on-failure", maxRetries: 0 }, { ...run, exitCode: 0 }), undefined);
  assert.equal(restartDelay({ name: "on-failure", maxRetries: 0 }, { ...run, restartCount: 1000 }), 100);
  assert.equal(restartDelay({ name: "on-failure", maxRetries: 2 }, { ...run, restartCount: 1 }), 100);
  assert.equal(restartDelay({ name: "on-failure", maxRetries: 2 }, { ...run, restartCount: 2 }), undefined);
  assert.equal(restartDelay({ name: "always", maxRetries: 0 }, { ...run, exitCode: 0 }), 100);
  assert.equal(restartDelay({ name: "unless-stopped", maxRetries: 0 }, { ...run, exitCode: 0 }), 100);
  assert.equal(restartDelay({ name: "always", maxRetries: 0 }, { ...run, stoppedByUser: true }), undefined);
});

test("restartDelay doubles from 100 ms up to a minute, and starts over after a run of 10 s", () => {
  const always = { name: "always", maxRetries: 0 } as const;
  let delay = 0;
  const seen: number[] = [];
  for (let i = 0; i < 12; i++) seen.push((delay = restartDelay(always, { ...run, lastDelayMs: delay })!));
  assert.deepEqual(seen, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
  assert.equal(restartDelay(always, { ...run, lastDelayMs: 60000, ranMs: 10_000 }), 100);
  assert.equal(restartDelay(always, { ...run, lastDelayMs: 800, ranMs: 9_999 }), 1600);
});
