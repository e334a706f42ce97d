/*
 * corerun-init: the container's PID 1 with `corerun run --init` (Docker's docker-init, bind-mounted
 * read-only at /sbin/docker-init). Programs that never expected to be PID 1 neither reap the
 * orphans the kernel hands to PID 1 nor die of SIGTERM (PID 1 gets no default signal actions).
 * This one starts the command as its child, forwards every catchable signal to it, reaps every
 * zombie (as a child subreaper when it is not PID 1), and exits with the command's status (128+N
 * when it died of signal N).
 *
 * Usage: corerun-init [--] CMD [ARGS...]. Static, so that it runs in any root filesystem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    sigset_t all, old;
    pid_t child;
    int first = 1, status = 0;

    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "corerun-init: usage: corerun-init [--] CMD [ARGS...]\n");
        return 125;
    }
    /* Not PID 1 (--pid host): orphans go to the nearest subreaper, which this makes it, as tini does. */
    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("corerun-init: prctl(PR_SET_CHILD_SUBREAPER)");
        return 125;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    child = fork();
    if (child < 0) {
        perror("corerun-init: fork");
        return 125;
    }
    if (child == 0) {
        /* The command gets the terminal's foreground as the shell would give it (job control). */
        setpgid(0, 0);
        if (isatty(0))
            tcsetpgrp(0, getpgrp());
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        fprintf(stderr, "corerun-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        pid_t pid;

        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            /* To the command's process group: what a shell's job would get from a terminal. */
            kill(-child, sig);
            continue;
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != child)
                continue;
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        }
    }
}
