/*
 * corerun's one piece of C: start a process in new namespaces from Node.
 *
 * Node cannot run JavaScript in a forked child (the child crashes as soon as it returns into JS)
 * and cannot unshare(CLONE_NEWUSER) at all, because it is multithreaded. clone(2) from here
 * creates the child directly in its namespaces; the child runs only this file's code, which is
 * async-signal-safe, until it execs. The parent is not moved into any namespace.
 *
 * The child first waits for one byte on sync_fd (when >= 0; it closes sync_close_fd, its copy of
 * the pipe's write end, so that the parent's death reads as EOF): the window in which the parent
 * configures the new namespaces from outside, such as uid_map/gid_map or the loopback. It then takes root in that namespace when
 * asked, resets signal handlers (Node's handlers point into a heap the child must not touch),
 * makes fds 0-2 inheritable (Node marks them close-on-exec) and execs.
 *
 * With die_with_parent, the child gets SIGKILL when its parent dies (PR_SET_PDEATHSIG, set
 * after the last change of its ids, which would clear it). A parent that died before that is
 * caught through a pidfd of the parent, opened before the clone: it is readable once the
 * parent has exited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exe.h"

struct child_args {
    const char *path;
    char *const *argv;
    char *const *envp;
    int flags;
    int join_fd;
    int join_flags;
    int sync_fd;
    int sync_close_fd;
    int become_root;
    int null_stdio;
    int stdin_fd;
    int parent_fd;
    /* A user namespace to join first, and where the child reports its own child's pid (below). */
    int userns_fd;
    int report_fd;
    char *stack2;
    sigset_t mask;
};

#define STACK_SIZE (256 * 1024)

/*
 * A child's stack: its own frames, and for a child that execs through corerun_exec_stub the
 * stub's argv, which that builds on the stack (a pointer for each of argv's and 7 more).
 */
static size_t stack_for(char *const argv[])
{
    size_t argc = 0;

    while (argv && argv[argc])
        argc++;
    return STACK_SIZE + (argc + 8) * sizeof(char *);
}

/*
 * corerun-exe (exe.c), built first and linked in here as data (the assembler finds it in the
 * output directory, its working directory and include path: compile.mjs).
 */
extern const unsigned char corerun_exe[], corerun_exe_end[];
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".hidden corerun_exe\n"
        ".hidden corerun_exe_end\n"
        "corerun_exe:\n"
        ".incbin \"corerun-exe\"\n"
        "corerun_exe_end:\n"
        ".previous\n");

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* A memfd holding len bytes of data; sealed against any change with seal. -1 with errno set. */
static int memfd_of(const char *name, unsigned int flags, const void *data, size_t len, int seal)
{
    size_t off = 0;
    ssize_t n;
    int fd, saved;

    fd = syscall(SYS_memfd_create, name, flags);
    /* MFD_EXEC (Linux 6.3) asks for an executable one where vm.memfd_noexec makes them not so by default. */
    if (fd < 0 && errno == EINVAL && (flags & MFD_EXEC))
        fd = syscall(SYS_memfd_create, name, flags & ~MFD_EXEC);
    if (fd < 0)
        return -1;
    while (off < len) {
        n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += n;
    }
    if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* seccomp(SECCOMP_SET_MODE_FILTER) of len instructions: a raw call, as the credential changes here. */
static int load_filter(const void *filter, int len, unsigned int flags)
{
    struct { unsigned short len; const void *filter; } prog = { (unsigned short)len, filter };
    long r;

    if (len <= 0 || len * 8 > EXE_FILTER_MAX) {
        errno = EINVAL;
        return -1;
    }
    r = syscall(SYS_seccomp, 1, flags, &prog);
    /* With SECCOMP_FILTER_FLAG_TSYNC, a thread id: a thread that holds another filter kept this one out. */
    if (r > 0)
        errno = EBUSY;
    return r == 0 ? 0 : -1;
}

static void decimal(char *buf, int n)
{
    char tmp[12];
    int i = 0, j = 0;

    if (n < 0) {
        strcpy(buf, "-");
        return;
    }
    do
        tmp[i++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    while (i > 0)
        buf[j++] = tmp[--i];
    buf[j] = 0;
}

/*
 * Execs file (searched in envp's PATH when it holds no '/') with argv and envp, through a sealed
 * in-memory copy of corerun-exe (see exe.c: CVE-2019-5736), which first waits for go on go_fd
 * when >= 0 and on a failed exec reports on err_fd (when >= 0; close-on-exec again in the stub)
 * or on stderr. A seccomp filter is loaded by the stub, right before its exec, when
 * no_new_privs is set; else here, right before the exec into the stub, since the kernel then
 * takes it only from a holder of CAP_SYS_ADMIN, which the stub, holding no more than the
 * container's capabilities, may not be. Returns only when the stub could not be started, with
 * errno set: -2 when its copy could not be made (memfd_create refused: vm.memfd_noexec=2), -3
 * when the filter was refused, else -1. No allocation: it runs in children of Node that share
 * its memory or copy its locks.
 */
int corerun_exec_stub(const char *file, char *const argv[], char *const envp[], int err_fd, const void *filter, int filter_len,
                      unsigned int seccomp_flags, int go_fd)
{
    int argc = 0, exe, filter_fd = -1, saved, i, ret = -1, filter_in_stub = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
    char err_arg[12], filter_arg[12], flags_arg[12], go_arg[12];

    while (argv[argc])
        argc++;
    {
        char *stub_argv[argc + 7];

        exe = memfd_of("corerun-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC, corerun_exe, corerun_exe_end - corerun_exe, 1);
        if (exe < 0)
            return -2;
        /* Not close-on-exec: the stub reads and closes it. */
        if (filter && filter_in_stub && (filter_fd = memfd_of("corerun-seccomp", MFD_ALLOW_SEALING, filter, (size_t)filter_len * 8, 1)) < 0)
            goto fail;
        decimal(err_arg, err_fd);
        decimal(filter_arg, filter_fd);
        decimal(flags_arg, (int)seccomp_flags);
        decimal(go_arg, go_fd);
        stub_argv[0] = "corerun-exe";
        stub_argv[1] = err_arg;
        stub_argv[2] = filter_arg;
        stub_argv[3] = flags_arg;
        stub_argv[4] = go_arg;
        stub_argv[5] = (char *)file;
        for (i = 0; i <= argc; i++)
            stub_argv[6 + i] = argv[i];
        /* The stub's own: it closes go, and makes err close-on-exec again. */
        if ((err_fd >= 0 && fcntl(err_fd, F_SETFD, 0) < 0) || (go_fd >= 0 && fcntl(go_fd, F_SETFD, 0) < 0))
            goto fail;
        if (filter && !filter_in_stub && load_filter(filter, filter_len, seccomp_flags) < 0) {
            ret = -3;
            goto fail;
        }
        syscall(SYS_execveat, exe, "", stub_argv, envp, AT_EMPTY_PATH);
    }
fail:
    saved = errno;
    if (err_fd >= 0)
        fcntl(err_fd, F_SETFD, FD_CLOEXEC);
    if (go_fd >= 0)
        fcntl(go_fd, F_SETFD, FD_CLOEXEC);
    if (filter_fd >= 0)
        close(filter_fd);
    close(exe);
    errno = saved;
    return ret;
}

/* Node's handlers point into a heap the child must not touch: every signal back to default. */
static void reset_signals(void)
{
    struct sigaction dfl;
    int sig;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
}

/* One byte on fd, or -1 when the writer went away first (the caller died or gave up). */
static int wait_byte(int fd)
{
    char c;
    ssize_t n;

    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    return n == 1 ? 0 : -1;
}

/*
 * clone(2) of fn on a stack of its own, with every signal blocked from before the clone until
 * the child has reset its handlers (it restores *mask itself): no Node handler can run in it.
 *
 * With shares, the child shares the caller's memory until it execs, as posix_spawn's does
 * (CLONE_VM | CLONE_VFORK): the calling thread sleeps until the exec (or the child's exit), and
 * nothing is copied. A copy, as fork makes, costs both sides of a Node process of ~50 MB: the
 * clone copies its page tables (~1-2 ms), the exec tears the child's copy down again, and the
 * caller then takes a copy-on-write fault on each page it writes. Such a child writes no memory
 * but its own stack and, through libc's wrappers, the sleeping thread's errno (which the caller
 * reads only when the clone itself failed) and cancellation flags (set back before each wrapper
 * returns); it takes no lock and no allocation, since the caller's other threads run on.
 * A child that waits for its parent before it execs (sync_fd, relay_clone's first child, exec's
 * entry) gets a copy: a sleeping caller could never let it go on.
 */
static int clone_child(int (*fn)(void *), void *arg, int flags, int shares, sigset_t *mask, size_t size)
{
    sigset_t all;
    char *stack;
    int pid, saved;

    stack = malloc(size);
    if (!stack)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, mask);
    pid = clone(fn, stack + size, flags | (shares ? CLONE_VM | CLONE_VFORK : 0) | SIGCHLD, arg);
    saved = errno;
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    free(stack);
    errno = saved;
    return pid;
}

static int child_main(void *p)
{
    struct child_args *a = p;
    int fd;

    reset_signals();
    /*
     * Joining another process's namespaces (its user namespace among them) is only possible for
     * a single-threaded process: this child can, Node cannot.
     */
    if (a->join_fd >= 0 && setns(a->join_fd, a->join_flags) < 0)
        _exit(125);
    if (a->sync_close_fd >= 0)
        close(a->sync_close_fd);
    if (a->sync_fd >= 0 && wait_byte(a->sync_fd) < 0)
        _exit(125);
    /*
     * The new mount namespace starts as a copy with the host's shared propagation: without this,
     * every mount the command makes would appear on the host too.
     */
    if ((a->flags & CLONE_NEWNS) && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        _exit(125);
    if (a->become_root) {
        /*
         * Without this the process keeps its unmapped ids: the overflow uid 65534 inside. Raw
         * system calls: glibc's wrappers would try to change the ids of every thread of the
         * parent, whose list this child inherited but whose threads it does not have.
         */
        /* setgroups is denied in a user namespace an unprivileged user made: the groups stay. */
        if (syscall(SYS_setgroups, 0, NULL) < 0 && errno != EPERM)
            _exit(125);
        if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0)
            _exit(125);
    }
    /*
     * A process that will take a terminal must not hold its caller's stdio: containerd's shim
     * waits for every holder of create's output pipes to close them before it goes on.
     */
    if (a->null_stdio) {
        fd = open("/dev/null", O_RDWR);
        if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(125);
        if (fd > 2)
            close(fd);
    }
    /* A hook reads the container's state on its stdin. */
    if (a->stdin_fd >= 0 && dup2(a->stdin_fd, 0) < 0)
        _exit(125);
    if (a->parent_fd >= 0) {
        struct pollfd parent = { .fd = a->parent_fd, .events = POLLIN };
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&parent, 1, 0) != 0)
            _exit(125);
        close(a->parent_fd);
    }
    for (fd = 0; fd < 3; fd++)
        fcntl(fd, F_SETFD, 0);
    sigprocmask(SIG_SETMASK, &a->mask, NULL);
    execve(a->path, a->argv, a->envp);
    _exit(errno == ENOENT ? 127 : 126);
}

/*
 * The first child's end: the real child's pid (or minus errno), cloned with CLONE_PARENT and so
 * the caller's child, to the caller.
 */
static void __attribute__((noreturn)) report_child(int report_fd, int pid)
{
    if (pid < 0)
        pid = -errno;
    if (write(report_fd, &pid, sizeof pid) != sizeof pid)
        _exit(125);
    _exit(0);
}

/*
 * Runs `first` in a first child that joins namespaces and clones the real child on *stack2 with
 * CLONE_PARENT (userns_main, enter_first); reads the pid it reports and reaps it. The real
 * child's pid, or -1 with errno set.
 */
static int relay_clone(int (*first)(void *), void *arg, char **stack2, size_t size2, int *report_fd, sigset_t *mask)
{
    int report[2], pid = -1, child, status, saved = 0;
    ssize_t n;

    *stack2 = malloc(size2);
    if (!*stack2)
        return -1;
    if (pipe2(report, O_CLOEXEC) < 0) {
        free(*stack2);
        return -1;
    }
    *report_fd = report[1];
    child = clone_child(first, arg, 0, 0, mask, STACK_SIZE);
    if (child < 0)
        saved = errno;
    close(report[1]);
    if (child >= 0) {
        do
            n = read(report[0], &pid, sizeof pid);
        while (n < 0 && errno == EINTR);
        if (n != sizeof pid) {
            pid = -1;
            saved = ECHILD;
        } else if (pid < 0) {
            saved = -pid;
            pid = -1;
        }
        while (waitpid(child, &status, __WALL) < 0 && errno == EINTR)
            ;
    }
    close(report[0]);
    free(*stack2);
    errno = saved;
    return pid;
}

/*
 * Namespaces made by clone belong to the user namespace the caller is in. To make them in a user
 * namespace joined by path (a pod's, as runc's nsexec does), a first child joins it and clones
 * the real child with CLONE_PARENT, so that it is the caller's child; it reports that pid (or
 * minus errno) and exits. Signals stay blocked throughout: child_main resets them. join_fd (a
 * PID namespace) is joined here, after the user namespace that owns it: the real child is born
 * in it, while this one stays in the caller's, so that the pid clone returns is the caller's.
 */
static int userns_main(void *p)
{
    struct child_args *a = p;
    int pid;

    if (setns(a->userns_fd, CLONE_NEWUSER) < 0 || (a->join_fd >= 0 && setns(a->join_fd, a->join_flags) < 0))
        pid = -1;
    else {
        a->join_fd = -1;
        pid = clone(child_main, a->stack2 + STACK_SIZE, a->flags | CLONE_PARENT, a);
    }
    report_child(a->report_fd, pid);
    return 0;
}

/*
 * Returns the child's pid, or -1 with errno set. All signals stay blocked from before the clone
 * until the child has reset its handlers, so no Node handler can run in the child. With
 * userns_fd, the namespaces of flags are made inside that user namespace, which the child joins.
 */
int corerun_clone_exec(int flags, const char *path, char *const argv[], char *const envp[], int join_fd, int join_flags,
                       int sync_fd, int sync_close_fd, int become_root, int null_stdio, int stdin_fd, int die_with_parent,
                       int userns_fd)
{
    struct child_args a = { .path = path, .argv = argv, .envp = envp, .flags = flags, .join_fd = join_fd,
                            .join_flags = join_flags, .sync_fd = sync_fd, .sync_close_fd = sync_close_fd,
                            .become_root = become_root, .null_stdio = null_stdio, .stdin_fd = stdin_fd, .parent_fd = -1,
                            .userns_fd = userns_fd, .report_fd = -1, .stack2 = NULL };
    int pid, saved;

    if (die_with_parent) {
        a.parent_fd = syscall(SYS_pidfd_open, getpid(), 0);
        if (a.parent_fd < 0)
            return -1;
    }
    pid = userns_fd >= 0 ? relay_clone(userns_main, &a, &a.stack2, STACK_SIZE, &a.report_fd, &a.mask)
                         : clone_child(child_main, &a, flags, sync_fd < 0, &a.mask, STACK_SIZE);
    saved = errno;
    if (a.parent_fd >= 0)
        close(a.parent_fd);
    errno = saved;
    return pid;
}

/*
 * A tool corerun starts beside itself (corerun-mount, corerun-net), in no new namespace: the
 * child gets fds[i] as its fd i (-1: /dev/null) and nothing else, since every other fd of a Node
 * process is close-on-exec, and a session of its own with new_session. Node's spawn costs ~5 ms
 * of loading node:child_process and ~5 ms of fork() on the caller's thread; this is one clone.
 */
#define SPAWN_MAX_FDS 16

struct spawn_args {
    const char *path;
    char *const *argv;
    char *const *envp;
    const int *fds;
    int nfds;
    int new_session;
    /* A program of a container's (an OCI startContainer hook): exec'd through corerun-exe. */
    int via_stub;
    sigset_t mask;
};

static int spawn_main(void *p)
{
    struct spawn_args *a = p;
    int moved[SPAWN_MAX_FDS];
    int i, null_fd = -1;

    reset_signals();
    if (a->new_session && setsid() < 0)
        _exit(125);
    /*
     * Each source is first copied above the targets (close-on-exec), so that no dup2 below
     * replaces a source still to be used: a source may itself be a target number.
     */
    for (i = 0; i < a->nfds; i++) {
        int from = a->fds[i];
        if (from < 0) {
            if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                _exit(125);
            from = null_fd;
        }
        if ((moved[i] = fcntl(from, F_DUPFD_CLOEXEC, a->nfds)) < 0)
            _exit(125);
    }
    /* dup2's copy is not close-on-exec: these, and only these, reach the tool. */
    for (i = 0; i < a->nfds; i++)
        if (dup2(moved[i], i) < 0)
            _exit(125);
    sigprocmask(SIG_SETMASK, &a->mask, NULL);
    if (a->via_stub && corerun_exec_stub(a->path, a->argv, a->envp, -1, NULL, 0, 0, -1) == -2) {
        static const char msg[] = "corerun: memfd_create corerun-exe: the executable copy of corerun-exe was refused (vm.memfd_noexec=2?)\n";
        ssize_t n = write(2, msg, sizeof msg - 1);
        (void)n;
        _exit(125);
    }
    if (!a->via_stub)
        execve(a->path, a->argv, a->envp);
    _exit(errno == ENOENT ? 127 : 126);
}

/* Returns the child's pid, or -1 with errno set. */
int corerun_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds, int new_session, int via_stub)
{
    struct spawn_args a = { .path = path, .argv = argv, .envp = envp, .fds = fds, .nfds = nfds, .new_session = new_session,
                            .via_stub = via_stub };

    if (nfds < 0 || nfds > SPAWN_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    return clone_child(spawn_main, &a, 0, 1, &a.mask, via_stub ? stack_for(argv) : STACK_SIZE);
}

/*
 * Entering a running container (exec): a new process joins the namespaces of the container's
 * first process (through its pidfd; the PID namespace was set for this thread's children by the
 * caller), takes the process's terminal, working directory, credentials and capabilities, and
 * execs. Node cannot do any of this for itself: the program and its libraries live in the
 * container's root, where no Node is, and setns into a user or mount namespace needs a
 * single-threaded caller. A failing step writes {step, errno} on err_fd (close-on-exec, so a
 * successful exec reads as EOF) and exits 125, or 126/127 when the exec itself fails.
 */
struct enter_args {
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int pidfd;
    int ns_flags;
    int sync_fd;
    int sync_close_fd;
    int err_fd;
    int tty_fd;
    unsigned int uid;
    unsigned int gid;
    int ngroups;
    const unsigned int *groups;
    /* bounding, effective, permitted, inheritable, ambient: two 32-bit words each */
    const unsigned int *caps;
    int last_cap;
    int no_new_privs;
    int umask_value;
    sigset_t mask;
    /* A compiled seccomp program (struct sock_filter[], filter_len instructions) and seccomp(2)'s flags. */
    const void *filter;
    int filter_len;
    unsigned int seccomp_flags;
    /* Without a terminal: this fd (/dev/null for exec without -i) as stdin, or the caller's when < 0. */
    int stdin_fd;
    /* Joining the PID namespace too: where the first child reports the real child's pid (below). */
    int report_fd;
    char *stack2;
    size_t stack2_size;
};

static void __attribute__((noreturn)) enter_fail(const struct enter_args *a, int step)
{
    int msg[2] = { step, errno };
    ssize_t n = write(a->err_fd, msg, sizeof msg);
    (void)n;
    if (step == ENTER_STEP_EXEC)
        _exit(msg[1] == ENOENT ? 127 : 126);
    _exit(125);
}

static int has_cap(const unsigned int *set, int cap)
{
    return (set[cap / 32] >> (cap % 32)) & 1;
}

static int enter_main(void *p)
{
    struct enter_args *a = p;
    int fd, cap;
    struct { unsigned int version; int pid; } hdr = { 0x20080522, 0 };
    struct { unsigned int effective, permitted, inheritable; } data[2];

    /*
     * A container without a PID namespace of its own (--pid host) sees this child, a copy of the
     * host's Node, in its /proc from birth: not dumpable, as enter_first makes the one born in a
     * container's PID namespace, for the same reason (CVE-2016-9962).
     */
    if (getuid() == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        enter_fail(a, ENTER_STEP_DUMPABLE);
    reset_signals();
    if (a->sync_close_fd >= 0)
        close(a->sync_close_fd);
    if (wait_byte(a->sync_fd) < 0)
        enter_fail(a, ENTER_STEP_SYNC);
    /* Joined already by enter_first when the PID namespace is joined too. */
    if (a->ns_flags && setns(a->pidfd, a->ns_flags) < 0)
        enter_fail(a, ENTER_STEP_SETNS);
    close(a->pidfd);
    if (a->tty_fd >= 0) {
        if (setsid() < 0 || ioctl(a->tty_fd, TIOCSCTTY, 0) < 0)
            enter_fail(a, ENTER_STEP_TTY);
        for (fd = 0; fd < 3; fd++)
            if (dup2(a->tty_fd, fd) < 0)
                enter_fail(a, ENTER_STEP_TTY);
        if (a->tty_fd > 2)
            close(a->tty_fd);
    } else if (setsid() < 0 || (a->stdin_fd >= 0 && dup2(a->stdin_fd, 0) < 0)) {
        enter_fail(a, ENTER_STEP_TTY);
    }
    if (chdir(a->cwd) < 0)
        enter_fail(a, ENTER_STEP_CHDIR);
    for (cap = 0; cap <= a->last_cap; cap++)
        if (!has_cap(a->caps, cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            enter_fail(a, ENTER_STEP_BOUNDING);
    /*
     * Without no_new_privs the kernel takes a filter only while CAP_SYS_ADMIN is still held:
     * before the user changes (runc's order); with it, last, right before the exec.
     */
    if (a->filter && !a->no_new_privs && load_filter(a->filter, a->filter_len, a->seccomp_flags) < 0)
        enter_fail(a, ENTER_STEP_SECCOMP);
    /* Raw calls: this child has one thread, glibc's wrappers would signal the parent's. */
    /* setgroups is denied in a user namespace an unprivileged user made: the groups stay, as for the first process. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || (syscall(SYS_setgroups, a->ngroups, a->groups) < 0 && errno != EPERM) ||
        syscall(SYS_setresgid, a->gid, a->gid, a->gid) < 0 || syscall(SYS_setresuid, a->uid, a->uid, a->uid) < 0 ||
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        enter_fail(a, ENTER_STEP_USER);
    for (fd = 0; fd < 2; fd++) {
        data[fd].effective = a->caps[2 + fd];
        data[fd].permitted = a->caps[4 + fd];
        data[fd].inheritable = a->caps[6 + fd];
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        enter_fail(a, ENTER_STEP_CAPS);
    for (cap = 0; cap <= a->last_cap; cap++)
        if (has_cap(a->caps + 8, cap) && has_cap(a->caps + 6, cap) && has_cap(a->caps + 4, cap) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            enter_fail(a, ENTER_STEP_AMBIENT);
    if (a->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        enter_fail(a, ENTER_STEP_NNP);
    if (a->umask_value >= 0)
        umask(a->umask_value);
    for (fd = 0; fd < 3; fd++)
        fcntl(fd, F_SETFD, 0);
    sigprocmask(SIG_SETMASK, &a->mask, NULL);
    /* With no_new_privs the stub loads the filter, last, right before its exec. */
    switch (corerun_exec_stub(a->argv[0], a->argv, a->envp, a->err_fd, a->no_new_privs ? a->filter : NULL, a->filter_len, a->seccomp_flags, -1)) {
    case -2:
        enter_fail(a, ENTER_STEP_STUB);
    case -3:
        enter_fail(a, ENTER_STEP_SECCOMP);
    default:
        enter_fail(a, ENTER_STEP_EXEC);
    }
    return 0;
}

/*
 * setns into a PID namespace needs CAP_SYS_ADMIN in the caller's own user namespace too: a user
 * other than root cannot set it for Node's children, whatever user namespace owns it. So a first
 * child joins every namespace (the container's user namespace first, in which it then holds
 * that capability) and clones the real child with CLONE_PARENT: it is born in the PID
 * namespace, as the caller's child, while this one stays in the caller's, so that the pid clone
 * returns is the caller's (relay_clone), as userns_main does.
 */
static int enter_first(void *p)
{
    struct enter_args *a = p;
    int pid;

    /*
     * The real child is born in the container's PID namespace with a copy of this memory, whose
     * binary is the host's Node. The container's processes (its uid) may open its /proc/PID/exe,
     * root and fds while it is dumpable and holds no capability they lack, as once it has taken
     * the process's own set, right before its exec. Not dumpable from birth, it is out of their
     * reach without CAP_SYS_PTRACE until then (CVE-2016-9962, against runc). Root only: for a
     * user without privileges, the container's root is that user, who gains nothing, and who
     * needs the child's /proc files as its own (oom_score_adj).
     */
    if (getuid() == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        report_child(a->report_fd, -1);
        return 0;
    }
    if (setns(a->pidfd, a->ns_flags | CLONE_NEWPID) < 0) {
        pid = -1;
    } else {
        a->ns_flags = 0;
        pid = clone(enter_main, a->stack2 + a->stack2_size, CLONE_PARENT, a);
    }
    report_child(a->report_fd, pid);
    return 0;
}

/*
 * Returns the new process's pid, or -1 with errno set. It waits for one byte on sync_fd before
 * it enters: the caller moves it into the container's cgroup and sets its rlimits meanwhile.
 * join_pid: it is born in the PID namespace of pidfd's process too.
 */
int corerun_enter_exec(char *const argv[], char *const envp[], const char *cwd, int pidfd, int ns_flags, int sync_fd,
                       int sync_close_fd, int err_fd, int tty_fd, unsigned int uid, unsigned int gid, int ngroups,
                       const unsigned int *groups, const unsigned int *caps, int last_cap, int no_new_privs, int umask_value,
                       const void *filter, int filter_len, unsigned int seccomp_flags, int stdin_fd, int join_pid)
{
    struct enter_args a = { .argv = argv, .envp = envp, .cwd = cwd, .pidfd = pidfd, .ns_flags = ns_flags, .sync_fd = sync_fd,
                            .sync_close_fd = sync_close_fd, .err_fd = err_fd, .tty_fd = tty_fd, .uid = uid, .gid = gid,
                            .ngroups = ngroups, .groups = groups, .caps = caps, .last_cap = last_cap,
                            .no_new_privs = no_new_privs, .umask_value = umask_value, .filter = filter,
                            .filter_len = filter_len, .seccomp_flags = seccomp_flags, .stdin_fd = stdin_fd,
                            .report_fd = -1, .stack2 = NULL, .stack2_size = stack_for(argv) };

    return join_pid ? relay_clone(enter_first, &a, &a.stack2, a.stack2_size, &a.report_fd, &a.mask)
                    : clone_child(enter_main, &a, 0, 0, &a.mask, a.stack2_size);
}

/*
 * The console-socket protocol: one sendmsg carrying the pty's name as data and exactly one
 * SCM_RIGHTS control message with one fd, the shape containerd's go-runc and conmon check.
 */
int corerun_send_fd(int sock, int fd, const char *name)
{
    struct msghdr msg;
    struct iovec iov;
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct cmsghdr *cmsg;

    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    iov.iov_base = (void *)name;
    iov.iov_len = strlen(name);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/*
 * Writes on a thread of its own, for a write that blocks in the kernel while the caller has other
 * things to wait for: moving a process into a cgroup through cgroup.procs waits for an RCU grace
 * period (5-15 ms here) unless another migration has just paid for one. The writes go to the fds
 * in order; the first failure stops them. One at a time per process.
 */
static struct {
    pthread_t thread;
    int *fds;
    int n;
    char data[32];
    size_t len;
    int failed;
    int err;
    int running;
} bg;

static void *bg_main(void *unused)
{
    int i;

    (void)unused;
    for (i = 0; i < bg.n; i++) {
        ssize_t n;
        do
            n = write(bg.fds[i], bg.data, bg.len);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            bg.failed = i;
            bg.err = errno;
            break;
        }
    }
    return NULL;
}

/* Starts the writes of data to fds[0..n); 0, or -1 with errno set. */
int corerun_write_start(const int *fds, int n, const char *data)
{
    size_t len = strlen(data);
    int rc;

    if (bg.running || n < 0 || len >= sizeof bg.data) {
        errno = bg.running ? EBUSY : EINVAL;
        return -1;
    }
    bg.fds = malloc((n ? n : 1) * sizeof(int));
    if (!bg.fds)
        return -1;
    memcpy(bg.fds, fds, n * sizeof(int));
    memcpy(bg.data, data, len + 1);
    bg.n = n;
    bg.len = len;
    bg.failed = -1;
    bg.err = 0;
    rc = pthread_create(&bg.thread, NULL, bg_main, NULL);
    if (rc) {
        free(bg.fds);
        errno = rc;
        return -1;
    }
    bg.running = 1;
    return 0;
}

/*
 * Waits for the writes started by corerun_write_start: -1 when they all went through, else the
 * index of the fd whose write failed, with its errno in *err.
 */
int corerun_write_wait(int *err)
{
    *err = EINVAL;
    if (!bg.running)
        return 0;
    pthread_join(bg.thread, NULL);
    bg.running = 0;
    free(bg.fds);
    *err = bg.err;
    return bg.failed;
}
