import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "@corerun/cli";
import { defaultProfile, parseProfile, profileToOci, type ProfileTarget } from "./profile.ts";
import type { OciSeccomp } from "./oci.ts";

const DOCKER_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
];
const AMD64: ProfileTarget = { capabilities: DOCKER_CAPS, arch: "amd64", kernel: "6.18.44-fc-v1045" };

function resolve(target: Partial<ProfileTarget> = {}): OciSeccomp {
  return profileToOci(defaultProfile(), { ...AMD64, ...target }, "default")!;
}

/** The rules that allow a syscall, with their argument conditions. */
function rulesFor(oci: OciSeccomp, name: string) {
  return (oci.syscalls ?? []).filter((s) => s.names.includes(name));
}

function usageError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

describe("the default profile, resolved as Docker resolves it", () => {
  test("is a valid Docker profile, and resolves as its checked form does", () => {
    const checked = parseProfile(JSON.stringify(defaultProfile()), "default.json");
    for (const target of [AMD64, { ...AMD64, capabilities: [] }, { ...AMD64, capabilities: ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"] }, { ...AMD64, arch: "arm64" }, { ...AMD64, kernel: "4.4.0" }]) {
      assert.deepEqual(profileToOci(defaultProfile(), target, "default"), profileToOci(checked, target, "default"));
    }
  });

  test("EPERM by default; x86_64 with its x86 and x32 sub-architectures", () => {
    const oci = resolve();
    assert.equal(oci.defaultAction, "SCMP_ACT_ERRNO");
    assert.equal(oci.defaultErrnoRet, 1);
    assert.deepEqual(oci.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    assert.deepEqual(resolve({ arch: "arm64" }).architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  });

  test("ordinary syscalls are allowed; keyctl, add_key, kexec_load, userfaultfd are not listed at all", () => {
    const oci = resolve();
    for (const name of ["read", "mkdir", "execve", "clock_gettime", "fchmodat2", "mseal"]) {
      assert.ok(rulesFor(oci, name).some((r) => r.action === "SCMP_ACT_ALLOW" && !r.args), name);
    }
    for (const name of ["keyctl", "add_key", "request_key", "kexec_load", "userfaultfd", "io_uring_setup"]) assert.deepEqual(rulesFor(oci, name), [], name);
  });

  test("without CAP_SYS_ADMIN: no mount, unshare or setns; clone only without namespace flags; clone3 gets ENOSYS", () => {
    const oci = resolve();
    for (const name of ["mount", "umount2", "unshare", "setns", "bpf", "perf_event_open", "open_by_handle_at", "reboot"]) assert.deepEqual(rulesFor(oci, name), [], name);
    assert.deepEqual(rulesFor(oci, "clone"), [{ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0x7e020000, op: "SCMP_CMP_MASKED_EQ" }] }]);
    assert.deepEqual(rulesFor(oci, "clone3"), [{ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }]);
  });

  test("--cap-add SYS_ADMIN brings mount, unshare and clone with any flags; the masked clone and ENOSYS clone3 rules go", () => {
    const oci = resolve({ capabilities: [...DOCKER_CAPS, "CAP_SYS_ADMIN"] });
    const admin = rulesFor(oci, "unshare");
    assert.equal(admin.length, 1);
    for (const name of ["mount", "umount2", "setns", "clone", "clone3"]) assert.ok(admin[0]!.names.includes(name), name);
    assert.deepEqual(rulesFor(oci, "clone").map((r) => r.args), [undefined]);
    assert.deepEqual(rulesFor(oci, "clone3").map((r) => r.action), ["SCMP_ACT_ALLOW"]);
  });

  test("each capability brings its own group", () => {
    const withCap = (cap: string, name: string) => rulesFor(resolve({ capabilities: [...DOCKER_CAPS, cap] }), name).length > 0;
    assert.ok(withCap("CAP_DAC_READ_SEARCH", "open_by_handle_at"));
    assert.ok(withCap("CAP_SYS_PTRACE", "kcmp"));
    assert.ok(withCap("CAP_SYS_MODULE", "finit_module"));
    assert.ok(withCap("CAP_SYS_TIME", "settimeofday"));
    assert.ok(withCap("CAP_BPF", "bpf"));
    assert.ok(withCap("CAP_PERFMON", "perf_event_open"));
    // --cap-drop SYS_CHROOT takes chroot away with the capability.
    assert.ok(rulesFor(resolve(), "chroot").length > 0);
    assert.deepEqual(rulesFor(resolve({ capabilities: DOCKER_CAPS.filter((c) => c !== "CAP_SYS_CHROOT") }), "chroot"), []);
  });

  test("socket: every family but AF_ALG and AF_VSOCK; personality: five exact values", () => {
    const oci = resolve();
    assert.deepEqual(rulesFor(oci, "socket").map((r) => r.args), [
      [{ index: 0, value: 38, op: "SCMP_CMP_LT" }], [{ index: 0, value: 39, op: "SCMP_CMP_EQ" }], [{ index: 0, value: 40, op: "SCMP_CMP_GT" }],
    ]);
    assert.deepEqual(rulesFor(oci, "personality").map((r) => r.args![0]!.value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
  });

  test("arch-conditional rules follow the architecture: arch_prctl on amd64, set_tls on arm64", () => {
    assert.ok(rulesFor(resolve(), "arch_prctl").length > 0);
    assert.deepEqual(rulesFor(resolve(), "set_tls"), []);
    assert.ok(rulesFor(resolve({ arch: "arm64" }), "set_tls").length > 0);
    assert.deepEqual(rulesFor(resolve({ arch: "arm64" }), "arch_prctl"), []);
  });

  test("minKernel: ptrace for everyone from 4.8 on, only with CAP_SYS_PTRACE before", () => {
    assert.ok(rulesFor(resolve(), "ptrace").length > 0);
    assert.deepEqual(rulesFor(resolve({ kernel: "4.4.0-210-generic" }), "ptrace"), []);
    assert.ok(rulesFor(resolve({ kernel: "4.4.0", capabilities: [...DOCKER_CAPS, "CAP_SYS_PTRACE"] }), "ptrace").length > 0);
  });
});

describe("parseProfile and profileToOci on user profiles", () => {
  test("a profile that is not JSON is refused, naming the file", () => {
    usageError(() => parseProfile("{ nope", "deny.json"), /^deny\.json: not valid JSON \(.*\); give a seccomp profile in Docker's format$/);
  });

  test("a profile of the wrong shape names the field", () => {
    usageError(() => parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{"names":["mkdir"]}}', "p.json"), /^p\.json: syscalls: /);
    usageError(() => parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}', "p.json"), /^p\.json: syscalls\.0\.args\.0\.index: /);
  });

  test("the old name field, errnoRet, args and flags pass through; unknown fields are ignored", () => {
    const p = parseProfile(JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], flags: ["SECCOMP_FILTER_FLAG_LOG"], unknownField: 1,
      syscalls: [{ name: "mkdir", action: "SCMP_ACT_ERRNO", errnoRet: 13, comment: "no" }, { names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: 9, op: "SCMP_CMP_EQ" }] }],
    }), "p.json");
    assert.deepEqual(profileToOci(p, AMD64, "p.json"), {
      defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], flags: ["SECCOMP_FILTER_FLAG_LOG"],
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }, { names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: 9, op: "SCMP_CMP_EQ" }] }],
    });
  });

  test("an empty profile means no filter, as in Docker", () => {
    assert.equal(profileToOci(parseProfile("{}", "e.json"), AMD64, "e.json"), undefined);
  });

  test("contradictions are refused with the entry named", () => {
    usageError(() => profileToOci(parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}', "a.json"), AMD64, "a.json"), /^a\.json: both architectures and archMap/);
    usageError(() => profileToOci(parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}', "n.json"), AMD64, "n.json"), /^n\.json: syscalls\[0\] has both name and names/);
    usageError(() => profileToOci(parseProfile('{"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}', "d.json"), AMD64, "d.json"), /^d\.json: defaultAction is missing/);
    usageError(() => profileToOci(parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"four"}}]}', "k.json"), AMD64, "k.json"), /^k\.json: minKernel "four" is not a kernel version/);
  });

  test("excludes drop a rule when any condition holds", () => {
    const p = parseProfile(JSON.stringify({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["a"], action: "SCMP_ACT_ALLOW", excludes: { caps: ["CAP_SYS_ADMIN"] } },
        { names: ["b"], action: "SCMP_ACT_ALLOW", excludes: { arches: ["amd64"] } },
        { names: ["c"], action: "SCMP_ACT_ALLOW", excludes: { minKernel: "5.0" } },
        { names: ["d"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_NET_RAW", "CAP_SYS_ADMIN"] } },
      ],
    }), "x.json");
    assert.deepEqual(profileToOci(p, AMD64, "x.json")!.syscalls!.map((s) => s.names[0]), ["a"]);
    assert.deepEqual(profileToOci(p, { ...AMD64, capabilities: [...DOCKER_CAPS, "CAP_SYS_ADMIN"], kernel: "4.19" }, "x.json")!.syscalls!.map((s) => s.names[0]), ["c", "d"]);
  });
});
