/*
 * What corerun-exe (exe.c) and the native helper (clone.c) both know.
 *
 * corerun-exe ERR_FD FILTER_FD SECCOMP_FLAGS GO_FD FILE ARG0 [ARGS...]
 *
 * runs FILE (searched in the PATH of its environment when it holds no '/') with ARG0 ARGS... and
 * its own environment. ERR_FD, FILTER_FD and GO_FD are decimal fd numbers or "-" for none. It
 * makes itself not dumpable first. FILTER_FD holds a compiled seccomp program (struct
 * sock_filter[], in a sealed memfd), which it reads and closes next. With GO_FD it then waits for
 * one line on it, {"t":"go"} or {"t":"go",...} (libs/sync: an OCI container's start), and closes
 * it; a signal that would end a process ends it meanwhile, with 128 + the signal's number (as
 * PID 1 it would otherwise ignore it). It loads the filter with SECCOMP_FLAGS right before the
 * exec: from then on it makes no system call but execve. When the exec fails it writes
 * {ENTER_STEP_EXEC, errno} (two ints) on ERR_FD, or else a line on stderr, and exits 127
 * (ENOENT) or 126.
 */
#ifndef CORERUN_EXE_H
#define CORERUN_EXE_H

/* The steps of entering a container, as written on an error fd (libs/syscall spawn.ts's ENTER_STEPS). */
enum enter_step {
    ENTER_STEP_SYNC = 1,
    ENTER_STEP_SETNS,
    ENTER_STEP_TTY,
    ENTER_STEP_CHDIR,
    ENTER_STEP_BOUNDING,
    ENTER_STEP_USER,
    ENTER_STEP_CAPS,
    ENTER_STEP_AMBIENT,
    ENTER_STEP_NNP,
    ENTER_STEP_SECCOMP,
    ENTER_STEP_EXEC,
    /* The sealed copy of corerun-exe could not be made (memfd_create). */
    ENTER_STEP_STUB,
    ENTER_STEP_DUMPABLE
};

/* The longest seccomp program the kernel takes (BPF_MAXINSNS instructions of 8 bytes). */
#define EXE_FILTER_MAX (4096 * 8)

#endif
