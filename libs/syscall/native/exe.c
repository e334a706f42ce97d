/*
 * corerun-exe: the last image before a container's program (usage in exe.h).
 *
 * The kernel resolves /proc/self/exe of the process that execs the program: a script starting
 * with `#!/proc/self/exe`, run by the container, gets the exec'ing process's own binary as its
 * interpreter, and through /proc/self/exe (or /proc/PID/exe) a handle on that file outside the
 * container's root, which it can open for writing once nothing executes it any more
 * (CVE-2019-5736, against runc). Node, corerun-exec's and corerun's image, is the host's
 * /usr/bin/node. So the program is exec'd from this stub instead, which the native helper
 * copies into a sealed memfd first (clone.c, corerun_exec_stub): the container can reach only
 * that copy, which no one can write, and which is gone when its last user is.
 *
 * On x86-64 it is built without libc (-nostdlib, its own _start): it makes no system call but
 * those of its own steps (not dumpable, the filter's read, the wait for go, the filter's load)
 * and, once the filter is in, none but the execve, so that a seccomp profile which lets the
 * container's execve through lets this one through too. Elsewhere it is the same code over
 * libc's syscall(2) and static startup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

#include "exe.h"

#ifdef __x86_64__
static long sys4(long n, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;

    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

/* The kernel's struct sigaction for rt_sigaction; x86-64 delivers a signal only with a restorer. */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};
#define KSA_RESTORER 0x04000000UL
void exe_restorer(void);
__asm__(".text\n"
        "exe_restorer:\n"
        "  mov $15, %eax\n" /* rt_sigreturn */
        "  syscall\n");

static int catch_signal(int sig, void (*handler)(int))
{
    struct ksigaction sa = { handler, KSA_RESTORER, exe_restorer, 0 };

    return (int)sys4(SYS_rt_sigaction, sig, (long)&sa, 0, 8);
}
#else
#include <signal.h>
#include <unistd.h>
static long sys4(long n, long a, long b, long c, long d)
{
    long ret = syscall(n, a, b, c, d);
    return ret < 0 ? -errno : ret;
}

static int catch_signal(int sig, void (*handler)(int))
{
    struct sigaction sa = { 0 };

    sa.sa_handler = handler;
    return sigaction(sig, &sa, 0);
}
#endif

/* One instruction more than the kernel takes: a longer program is seen to be longer, and refused. */
static unsigned char filter[EXE_FILTER_MAX + 8];

static __attribute__((noreturn)) void leave(int code)
{
    for (;;)
        sys4(SYS_exit_group, code, 0, 0, 0);
}

static unsigned long length(const char *s)
{
    unsigned long n = 0;

    while (s[n])
        n++;
    return n;
}

static void say(const char *s)
{
    sys4(SYS_write, 2, (long)s, (long)length(s), 0);
}

/* A decimal fd number, -1 for "-", -2 when it is neither. */
static int fd_arg(const char *s)
{
    int n = 0;

    if (s[0] == '-' && s[1] == 0)
        return -1;
    if (!*s)
        return -2;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > 100000000)
            return -2;
        n = n * 10 + (*s - '0');
    }
    return n;
}

static const char *errno_name(int e)
{
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case ETXTBSY: return "ETXTBSY";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EIO: return "EIO";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ELIBBAD: return "ELIBBAD";
    default: return "an error";
    }
}

static __attribute__((noreturn)) void fail(int err_fd, int step, int err, const char *what, const char *file)
{
    if (err_fd >= 0) {
        int msg[2] = { step, err };
        sys4(SYS_write, err_fd, (long)msg, sizeof msg, 0);
    } else {
        say("corerun-exe: ");
        say(what);
        if (file) {
            say(" ");
            say(file);
        }
        say(": ");
        say(errno_name(err));
        say("\n");
    }
    leave(step != ENTER_STEP_EXEC ? 125 : err == ENOENT ? 127 : 126);
}

/*
 * execvpe's search, with PATH taken from the environment the program gets (its first PATH=, as
 * getenv reads it). As corerun's own lookup (libs/syscall pathCandidates), an empty PATH entry
 * is skipped rather than taken as the current directory. The search goes on past a directory
 * without the file (ENOENT, ENOTDIR) or one that may not be searched (EACCES, reported if
 * nothing else is found) and stops at any other failure: a file that is there but cannot run
 * (ENOEXEC, ETXTBSY, ...) is not silently passed over for another of the same name.
 */
static int exec_in_path(const char *file, char *const argv[], char *const envp[])
{
    static char buf[4096];
    const char *path = 0, *p;
    unsigned long flen = length(file), len, i;
    int saved = ENOENT;
    long r;

    if (!flen)
        return ENOENT;
    for (p = file; *p; p++)
        if (*p == '/')
            return (int)-sys4(SYS_execve, (long)file, (long)argv, (long)envp, 0);
    for (i = 0; envp[i] && !path; i++)
        if (envp[i][0] == 'P' && envp[i][1] == 'A' && envp[i][2] == 'T' && envp[i][3] == 'H' && envp[i][4] == '=')
            path = envp[i] + 5;
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    while (*path) {
        for (len = 0; path[len] && path[len] != ':'; len++)
            ;
        if (len > 0 && len + flen + 2 <= sizeof buf) {
            for (i = 0; i < len; i++)
                buf[i] = path[i];
            buf[len] = '/';
            for (i = 0; i <= flen; i++)
                buf[len + 1 + i] = file[i];
            r = sys4(SYS_execve, (long)buf, (long)argv, (long)envp, 0);
            if (r == -EACCES)
                saved = EACCES;
            else if (r != -ENOENT && r != -ENOTDIR)
                return (int)-r;
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return saved;
}

static void ended(int sig)
{
    leave(128 + sig);
}

/*
 * Waits for {"t":"go"} on fd, then closes it. PID 1 of a PID namespace gets no signal it has no
 * handler for (SIGKILL aside): the signals whose default ends a process end this one while it
 * waits, as they ended corerun-exec (Node) before it; the exec puts them back to their default.
 */
static void wait_go(int fd)
{
    static const char want[] = "{\"t\":\"go\"";
    static char line[4096];
    unsigned long i;
    long n = 0, r;
    int sig;

    for (sig = 1; sig < 32; sig++)
        if (sig != 9 && sig != 17 && sig != 18 && sig != 19 && sig != 20 && sig != 21 && sig != 22 && sig != 23 && sig != 28)
            catch_signal(sig, ended);
    while (n < (long)sizeof line) {
        r = sys4(SYS_read, fd, (long)(line + n), (long)sizeof line - n, 0);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            break;
        n += r;
        for (i = n - r; i < (unsigned long)n && line[i] != '\n'; i++)
            ;
        if (i < (unsigned long)n)
            break;
    }
    /* One whole line: {"t":"go"} or {"t":"go",...} (start may add the state and a tty). */
    for (i = 0; i + 1 < sizeof want; i++)
        if ((long)i >= n || line[i] != want[i])
            break;
    if (i + 1 < sizeof want || (long)i >= n || (line[i] != '}' && line[i] != ',') || line[n - 1] != '\n') {
        say(n ? "corerun-exe: expected {\"t\":\"go\"} from start, got something else\n" : "corerun-exe: no start came (its FIFO closed)\n");
        leave(125);
    }
    sys4(SYS_close, fd, 0, 0, 0);
}

static __attribute__((noreturn)) void run(int argc, char **argv, char **envp)
{
    int err_fd, filter_fd, flags, go_fd;
    long n = 0, r;

    if (argc < 7 || (err_fd = fd_arg(argv[1])) < -1 || (filter_fd = fd_arg(argv[2])) < -1 || (flags = fd_arg(argv[3])) < 0 ||
        (go_fd = fd_arg(argv[4])) < -1) {
        say("corerun-exe: not a program to run by hand or as an interpreter: corerun starts a container's program through it\n");
        leave(125);
    }
    /* The error fd survived the exec into this stub: it must not survive the next one. */
    if (err_fd >= 0)
        sys4(SYS_fcntl, err_fd, F_SETFD, FD_CLOEXEC, 0);
    /*
     * Not dumpable while it waits (the program's exec makes it so again): a process of another
     * container sharing its PID namespace cannot open its fds through /proc (go's FIFO, the
     * filter's memfd) or ptrace it. The filter is read, and its fd closed, before the wait.
     */
    sys4(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0);
    if (filter_fd >= 0) {
        while (n < (long)sizeof filter && (r = sys4(SYS_pread64, filter_fd, (long)(filter + n), (long)sizeof filter - n, n)) != 0) {
            if (r == -EINTR)
                continue;
            if (r < 0)
                fail(err_fd, ENTER_STEP_SECCOMP, (int)-r, "read the seccomp filter", 0);
            n += r;
        }
        sys4(SYS_close, filter_fd, 0, 0, 0);
        if (n == 0 || n % 8 != 0 || n > EXE_FILTER_MAX)
            fail(err_fd, ENTER_STEP_SECCOMP, EINVAL, "seccomp", 0);
    }
    if (go_fd >= 0)
        wait_go(go_fd);
    if (filter_fd >= 0) {
        struct sock_fprog prog = { (unsigned short)(n / 8), (struct sock_filter *)filter };
        /* With TSYNC a positive value names a thread that kept another filter: none here. */
        r = sys4(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, (long)&prog, 0);
        if (r != 0)
            fail(err_fd, ENTER_STEP_SECCOMP, r < 0 ? (int)-r : EINVAL, "seccomp", 0);
    }
    fail(err_fd, ENTER_STEP_EXEC, exec_in_path(argv[5], argv + 6, envp), "execve", argv[5]);
}

#ifdef __x86_64__
/* The kernel's initial stack: argc, argv[0..argc), NULL, envp[...], NULL. */
__attribute__((noreturn, used)) static void start(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);

    run(argc, argv, argv + argc + 1);
}

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start\n"
        "  hlt\n");
#else
int main(int argc, char **argv, char **envp)
{
    run(argc, argv, envp);
}
#endif
