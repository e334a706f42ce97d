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
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

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
    int parent_fd;
    sigset_t mask;
};

static int child_main(void *p)
{
    struct child_args *a = p;
    struct sigaction dfl;
    int sig, fd;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    /*
     * Joining another process's namespaces (its user namespace among them) is only possible for
     * a single-threaded process: this child can, Node cannot.
     */
    if (a->join_fd >= 0 && setns(a->join_fd, a->join_flags) < 0)
        _exit(125);
    if (a->sync_close_fd >= 0)
        close(a->sync_close_fd);
    if (a->sync_fd >= 0) {
        char c;
        ssize_t n;
        do
            n = read(a->sync_fd, &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(125);
        close(a->sync_fd);
    }
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
 * Returns the child's pid, or -1 with errno set. All signals stay blocked from before the clone
 * until the child has reset its handlers, so no Node handler can run in the child.
 */
int corerun_clone_exec(int flags, const char *path, char *const argv[], char *const envp[], int join_fd, int join_flags,
                       int sync_fd, int sync_close_fd, int become_root, int die_with_parent)
{
    const size_t stack_size = 256 * 1024;
    struct child_args a = { .path = path, .argv = argv, .envp = envp, .flags = flags, .join_fd = join_fd,
                            .join_flags = join_flags, .sync_fd = sync_fd, .sync_close_fd = sync_close_fd,
                            .become_root = become_root, .parent_fd = -1 };
    sigset_t all;
    char *stack;
    int pid, saved;

    if (die_with_parent) {
        a.parent_fd = syscall(SYS_pidfd_open, getpid(), 0);
        if (a.parent_fd < 0)
            return -1;
    }
    stack = malloc(stack_size);
    if (!stack) {
        saved = errno;
        if (a.parent_fd >= 0)
            close(a.parent_fd);
        errno = saved;
        return -1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &a.mask);
    /* No CLONE_VM: the child gets its own copy of memory, stack included, as with fork. */
    pid = clone(child_main, stack + stack_size, flags | SIGCHLD, &a);
    saved = errno;
    pthread_sigmask(SIG_SETMASK, &a.mask, NULL);
    free(stack);
    if (a.parent_fd >= 0)
        close(a.parent_fd);
    errno = saved;
    return pid;
}
