/*
 * corerun-monitor: the one process that stays with a detached container (`corerun run -d`).
 *
 *   corerun-monitor ROOT none|LOG_MAX[:FILES] rm|keep|hold|hold-rm|hold-keep -- NODE [NODE_OPTIONS...] [--] CORERUN_JS ARGS...
 *
 * (NODE's options, each starting with "-", end at CORERUN_JS; the handler below is run with them.)
 * A Node process costs tens of MB; this one costs about one. It is a child subreaper and runs
 * the ordinary start (NODE CORERUN_JS ARGS..., corerun's run with -d) with:
 *   fd 0  the read end of the container's stdin pipe (kept by the monitor only with -i)
 *   fd 1  /dev/null
 *   fd 2  the client's stderr (the start's errors reach the user)
 *   fd 3  the container's stdout  (CORERUN_STDOUT_FD)
 *   fd 4  the container's stderr  (CORERUN_STDERR_FD)
 *   fd 5  the start's report      (CORERUN_REPORT_FD, a socket): "id ID\n" once the state
 *         exists, "pid PID\n" once the first process runs its command
 * Every other fd the monitor is given is closed first: whatever its caller left open without
 * close-on-exec (a shell's or a test runner's pipe; Node keeps such fds across exec) would
 * otherwise live as long as the container, in the monitor and in each start and handler it runs.
 * The start exits without tearing anything down; the container's first process, its child, is
 * re-parented here. The monitor tells the client on its stdout "ok ID\n" or "fail CODE\n", then
 * lets go of the client's stdout and stderr.
 *
 * From then on it copies the container's stdout and stderr into ROOT/ID/container.log in
 * Docker's json-file format, one object per line; past LOG_MAX bytes the file is renamed to
 * container.log.1 (the older ones to .2 and on, up to FILES files in all, default 2; with one it
 * is begun anew) and a new one begun; with none, there is no log (attach clients still get the
 * output). When the first process
 * exits, it runs `NODE [...] CORERUN_JS __monitor-exit ROOT ID STATUS FINISHED_MS rm|keep`, which
 * records the exit and releases (or with rm removes) the container, and it exits once that is
 * done and the container's output has ended.
 *
 * With -t the start also sends the container's pty over the report socket (SCM_RIGHTS, lines
 * "tty master" and "tty peer"): the monitor logs what the master reads as stream "stdout", as
 * Docker does for a tty container, and holds the peer until the first process exits, so that the
 * master does not read as ended before the container has opened its side. With -i the start
 * says "stdin": clients' input then reaches the pty, or without -t the container's stdin, a pipe
 * whose read end the start got as fd 0 (without "stdin" the monitor closes its end).
 *
 * Once the container runs, ROOT/ID/attach.sock takes `corerun attach` clients (see the attach
 * section below for its frames); each client gets the output from then on and may type into
 * the container; at the end each gets the exit status. `corerun-monitor --drain` (fd 0 a pty
 * master) only reads and discards until the pty ends: what keeps an `exec -it` process's
 * terminal open once its client has detached.
 *
 * With --restart, the handler may answer "restart DELAY_MS": the monitor then waits and runs the
 * start again for the same container (see begin_run and answer_ms below). Each run gets a
 * stdin pipe of its own and, with -t, sends a new pty from its container's new devpts; as
 * Docker's attach, a client's attachment ends with the run it attached to (it gets that run's
 * exit status), and a new attach is needed for the next run.
 *
 * hold and hold-rm are a foreground `run -it`: its client keeps the pipe of the monitor's stdout
 * open after "ok ID" and attaches at once. Until that first client connects the container's
 * output stays in its pty and its exit is not handled, so that the client misses nothing. Once
 * its terminal is set up the client says so (frame 'a'); until then it is still starting, and if
 * it goes (its pipe closes: a Ctrl-C, a kill, a failed attach) the container is killed and
 * removed, as a foreground run interrupted while it starts is: no detached container is left
 * that nobody asked for. At the exit hold removes the container (as a foreground run ends)
 * while that first client is still attached, and keeps it as exited once it has detached;
 * hold-rm always removes it; hold-keep (`corerun start -a`) always keeps it (a client gone
 * while starting leaves it killed, exited).
 *
 * It honours corerun's fault switch (CORERUN_FAULT, CORERUN_FAULT_TRACE, CORERUN_FAULT_PAUSE; see
 * libs/cli/src/fault.ts) at its own steps: monitor:forked, monitor:reported, monitor:log,
 * monitor:exit-handler, monitor:exit-handler-done, monitor:restart-wait and monitor:restarted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Docker splits a line longer than this into several entries, the last one ending in \n. */
#define LINE_MAX_BYTES 16384
#define HANDLER_WORD "__monitor-exit"
#define HEALTH_WORD "__health"

struct stream {
    int fd;
    const char *name;
    char type; /* its attach frame type */
    size_t len;
    char buf[LINE_MAX_BYTES];
};

static const char *root;
static long long log_max;
/* --log-opt max-file: the log and its rotated files (container.log.1 ...); --log-driver none: no log. */
static int log_files = 2, log_none;
static int remove_all;
/*
 * hold, hold-rm: the foreground client not yet attached (its stdout pipe), then its connection;
 * hold_pending until it has said that its terminal is up, hold_lost once it went before that.
 */
static int holding, hold_keeps, hold_pipe = -1, hold_client = -1, hold_pending, hold_lost;
static char id[64];
static pid_t init_pid;
/* From the start's report "health MS": the delay before the run's first health check, -1 for none. */
static long long health_first = -1;
static int log_fd = -1;
static char log_path[PATH_MAX];
static long long log_size;
static char out[LINE_MAX_BYTES * 6 + 256];
static int logged;

static int write_all(int fd, const char *p, size_t n);
static void attach_output(char type, const char *data, size_t n);
static int restarted;
static void restart_fault(void);

/* The same switch as corerun's faultPoint: trace the step, stop there, or die there as kill -9 would. */
static void fault_point(const char *name)
{
    const char *trace = getenv("CORERUN_FAULT_TRACE"), *pause = getenv("CORERUN_FAULT_PAUSE"), *fault = getenv("CORERUN_FAULT");

    if (trace && *trace) {
        int fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (fd >= 0) {
            char line[64];
            int n = snprintf(line, sizeof line, "%s\n", name);
            write_all(fd, line, (size_t)n);
            close(fd);
        }
    }
    if (pause && strcmp(pause, name) == 0)
        raise(SIGSTOP);
    if (fault && strcmp(fault, name) == 0)
        kill(getpid(), SIGKILL);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void open_log(void)
{
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
        struct stat st;
        log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
    }
}

/* One json-file entry: {"log":"...","stream":"stdout","time":"RFC3339Nano"}. */
static void log_entry(const char *stream, const char *data, size_t n)
{
    struct timespec ts;
    struct tm tm;
    size_t o = 0, i;
    static const char hex[] = "0123456789abcdef";

    if (log_fd < 0)
        return;
    o += (size_t)snprintf(out, sizeof out, "{\"log\":\"");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            o += 4;
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    o += (size_t)snprintf(out + o, sizeof out - o, "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n", stream,
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
    if (log_size > 0 && log_size + (long long)o > log_max) {
        char from[PATH_MAX + 16], to[PATH_MAX + 16];
        close(log_fd);
        /* container.log.N-2 -> .N-1 (replacing it), ..., container.log -> .1; one file: begun anew. */
        if (log_files <= 1)
            unlink(log_path);
        for (int k = log_files - 1; k >= 1; k--) {
            snprintf(to, sizeof to, "%s.%d", log_path, k);
            if (k == 1)
                snprintf(from, sizeof from, "%s", log_path);
            else
                snprintf(from, sizeof from, "%s.%d", log_path, k - 1);
            rename(from, to);
        }
        open_log();
        if (log_fd < 0)
            return;
    }
    if (write_all(log_fd, out, o) == 0)
        log_size += (long long)o;
    if (!logged) {
        logged = 1;
        fault_point("monitor:log");
    }
}

/* Reads what is there; returns 0 at EOF (the remainder is written out), 1 otherwise. */
static int pump(struct stream *s)
{
    ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    size_t start = 0, i;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    /* A pty master reads EIO once no process holds its peer: its end. */
    if (n <= 0) {
        if (s->len)
            log_entry(s->name, s->buf, s->len);
        s->len = 0;
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    attach_output(s->type, s->buf + s->len, (size_t)n);
    s->len += (size_t)n;
    for (i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            log_entry(s->name, s->buf + start, i + 1 - start);
            start = i + 1;
        }
    }
    if (start == 0 && s->len == sizeof s->buf) {
        log_entry(s->name, s->buf, s->len);
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    return 1;
}

/*
 * ---- The terminal, the container's stdin and attach clients (run -d -t/-i, corerun attach) ----
 *
 * ROOT/ID/attach.sock, a stream socket; every message either way is one frame:
 *   TYPE (1 byte)  LENGTH (2 bytes, big-endian)  LENGTH bytes
 * monitor -> client: 'o' output (the pty's, or stdout), 'e' stderr, 'x' the exit status in
 * decimal, sent when the container has exited and its output has ended, before the socket closes.
 * client -> monitor: 'i' input (dropped unless the start said "stdin"), 'w' a window size
 * (rows, columns: 2 bytes each, big-endian) for the pty, 'a' (empty) from a foreground run -it's
 * client once its terminal is set up: from then on its going is a detach (see hold above).
 * With --restart the socket stays from one run to the next; the clients of a run get its 'x'
 * and are let go when it ends.
 * A client that cannot keep up for a second is disconnected rather than stall the others. A
 * client's buffer is allocated when it connects: a container nobody attaches to costs nothing more.
 */
#define ATTACH_MAX 16
#define FRAME_MAX 4096

struct client {
    int fd;
    size_t len;
    unsigned char buf[3 + FRAME_MAX];
};

static struct client *clients[ATTACH_MAX];
static int attach_fd = -1;
static char attach_path[PATH_MAX];
static int tty_master = -1, tty_peer = -1;
static int stdin_w = -1;
static int keep_stdin;
static int received[4];
static int n_received;

/* Writes everything to a non-blocking fd, waiting for room at most a second in all. */
static int write_waiting(int fd, const char *p, size_t n)
{
    long long waited = 0;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN || waited >= 1000)
                return -1;
            poll(&pf, 1, 100);
            waited += 100;
            continue;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The foreground client went before its terminal was up: the container is not to run on (see hold). */
static void hold_gone(void)
{
    hold_pending = 0;
    hold_lost = 1;
    holding = 0;
    if (hold_pipe >= 0)
        close(hold_pipe);
    hold_pipe = -1;
}

static void client_close(int i)
{
    if (clients[i]->fd == hold_client)
        hold_client = -1;
    close(clients[i]->fd);
    free(clients[i]);
    clients[i] = NULL;
}

static void attach_output(char type, const char *data, size_t n)
{
    int i;
    while (n > 0) {
        size_t part = n > 65535 ? 65535 : n;
        unsigned char head[3] = { (unsigned char)type, (unsigned char)(part >> 8), (unsigned char)part };
        for (i = 0; i < ATTACH_MAX; i++) {
            if (!clients[i])
                continue;
            if (write_waiting(clients[i]->fd, (const char *)head, 3) < 0 || write_waiting(clients[i]->fd, data, part) < 0)
                client_close(i);
        }
        data += part;
        n -= part;
    }
}

/* Once the container runs: the socket clients attach to. */
static void attach_open(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    if (snprintf(attach_path, sizeof attach_path, "%s/%s/attach.sock", root, id) >= (int)sizeof addr.sun_path)
        return;
    strcpy(addr.sun_path, attach_path);
    attach_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (attach_fd < 0)
        return;
    unlink(attach_path);
    if (bind(attach_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(attach_path, 0600) < 0 || listen(attach_fd, 8) < 0) {
        close(attach_fd);
        attach_fd = -1;
    }
}

static void attach_accept(void)
{
    int fd = accept4(attach_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), i;
    if (fd < 0)
        return;
    for (i = 0; i < ATTACH_MAX; i++) {
        if (!clients[i]) {
            clients[i] = calloc(1, sizeof *clients[i]);
            if (!clients[i])
                break;
            clients[i]->fd = fd;
            if (holding) {
                /* The foreground client: from now on it gets the output and sees the exit. Its pipe
                 * stays watched until it says its terminal is up. */
                holding = 0;
                hold_client = fd;
            }
            return;
        }
    }
    close(fd);
}

/* Typed input: into the pty, or the container's stdin; only when the container was given -i. */
static void feed_input(const char *data, size_t n)
{
    int fd = tty_master >= 0 ? tty_master : stdin_w;
    if (!keep_stdin || fd < 0)
        return;
    if (write_waiting(fd, data, n) < 0 && fd == stdin_w && errno == EPIPE) {
        close(stdin_w);
        stdin_w = -1;
    }
}

/*
 * A new stdin pipe for a run: the read end for its start (the container's fd 0), the write end
 * kept for attach clients' input. The previous run's goes: as Docker's, each run gets a new one.
 */
static int new_stdin(void)
{
    int p[2];

    if (stdin_w >= 0)
        close(stdin_w);
    stdin_w = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    stdin_w = p[1];
    fcntl(stdin_w, F_SETFL, O_NONBLOCK);
    return p[0];
}

static void client_read(int i)
{
    struct client *c = clients[i];
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    size_t at = 0;

    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        client_close(i);
        return;
    }
    c->len += (size_t)r;
    while (c->len - at >= 3) {
        unsigned char *f = c->buf + at;
        size_t len = (size_t)f[1] << 8 | f[2];
        if (len > FRAME_MAX) {
            client_close(i);
            return;
        }
        if (c->len - at < 3 + len)
            break;
        if (f[0] == 'i') {
            feed_input((const char *)f + 3, len);
        } else if (f[0] == 'w' && len == 4 && tty_master >= 0) {
            struct winsize ws = { .ws_row = (unsigned short)(f[3] << 8 | f[4]), .ws_col = (unsigned short)(f[5] << 8 | f[6]) };
            ioctl(tty_master, TIOCSWINSZ, &ws);
        } else if (f[0] == 'a' && hold_pending) {
            /* The foreground client (whichever connection says so) is attached for good. */
            hold_pending = 0;
            hold_client = c->fd;
            if (hold_pipe >= 0)
                close(hold_pipe);
            hold_pipe = -1;
        }
        at += 3 + len;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
}

/* The end of a run: its clients get its exit status and are let go, as Docker's attach ends. */
static void attach_end_run(int code)
{
    char text[16];
    int i, n = snprintf(text, sizeof text, "%d", code);

    attach_output('x', text, (size_t)n);
    for (i = 0; i < ATTACH_MAX; i++)
        if (clients[i])
            client_close(i);
}

/* The end: every client gets the exit status, and the socket goes. */
static void attach_close(int code)
{
    if (attach_fd < 0)
        return;
    attach_end_run(code);
    close(attach_fd);
    attach_fd = -1;
    unlink(attach_path);
}

/* The report socket: its bytes, and the fds that come with them (queued for "tty" lines). */
static ssize_t report_read(int fd, char *buf, size_t cap)
{
    union { char b[CMSG_SPACE(sizeof(int) * 2)]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b, .msg_controllen = sizeof control.b };
    struct cmsghdr *cm;
    ssize_t r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

    if (r < 0)
        return r;
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + k * sizeof(int), sizeof got);
            if (n_received < (int)(sizeof received / sizeof received[0]))
                received[n_received++] = got;
            else
                close(got);
        }
    }
    return r;
}

static int take_received(void)
{
    int fd;
    if (!n_received)
        return -1;
    fd = received[0];
    memmove(received, received + 1, sizeof received - sizeof received[0]);
    n_received--;
    return fd;
}

/* Report lines about the terminal and stdin; 0 when the line is not one of them. */
static int report_terminal(const char *line)
{
    if (strcmp(line, "tty master") == 0) {
        tty_master = take_received();
        if (tty_master >= 0)
            fcntl(tty_master, F_SETFL, fcntl(tty_master, F_GETFL) | O_NONBLOCK);
    } else if (strcmp(line, "tty peer") == 0) {
        tty_peer = take_received();
    } else if (strcmp(line, "stdin") == 0) {
        keep_stdin = 1;
    } else {
        return 0;
    }
    return 1;
}

/* Every fd above stderr that the caller left open without close-on-exec (see the top of the file). */
static void close_inherited(void)
{
    if (close_range(3, ~0U, 0) < 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
            close((int)fd);
    }
}

/* corerun-monitor --drain: fd 0 is a pty master; read until no process holds its peer. */
static int drain(void)
{
    char buf[4096];
    close_inherited();
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
    }
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 125;
}

static int devnull(void)
{
    return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/*
 * The handler: records the exit and releases the container, with stdin and stderr on /dev/null.
 * Its stdout, when answer is given, is a pipe on which it says "restart DELAY_MS" (--restart).
 */
static pid_t run_corerun(char **start, char *const *words, int *answer, int faults)
{
    int out[2] = { -1, -1 };
    pid_t pid;

    if (answer && pipe2(out, O_CLOEXEC) < 0)
        out[0] = out[1] = -1;
    pid = fork();
    if (pid == 0) {
        /* Node and its options up to the script: NODE [FLAGS...] [--] SCRIPT, then the words. */
        size_t n = 1, k, w = 0;
        while (start[n] && start[n + 1] && start[n][0] == '-')
            n++;
        while (words[w])
            w++;
        char *argv[n + w + 2];
        for (k = 0; k <= n; k++)
            argv[k] = start[k];
        for (size_t j = 0; j < w; j++)
            argv[k++] = words[j];
        argv[k] = NULL;
        sigset_t none;
        int fd = devnull();
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (restarted && faults)
            restart_fault();
        else if (!faults)
            unsetenv("CORERUN_FAULT");
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(out[1] >= 0 ? out[1] : fd, 1);
            dup2(fd, 2);
        }
        execv(start[0], argv);
        _exit(127);
    }
    if (out[1] >= 0)
        close(out[1]);
    if (pid < 0 && out[0] >= 0) {
        close(out[0]);
        out[0] = -1;
    }
    if (answer)
        *answer = out[0];
    return pid;
}

static pid_t run_handler(char **start, int code, long long finished_ms, const char *mode, int *answer)
{
    char status[16], finished[32];
    char *words[] = { HANDLER_WORD, (char *)root, id, status, finished, (char *)mode, NULL };

    snprintf(status, sizeof status, "%d", code);
    snprintf(finished, sizeof finished, "%lld", finished_ms);
    return run_corerun(start, words, answer, 1);
}

/*
 * A health check (corerun run --health-cmd, an image's HEALTHCHECK): once the start has reported
 * "health MS", the monitor runs `NODE [...] CORERUN_JS __health ROOT ID` MS after the first
 * process began, one at a time, while it lives; each answers "next MS" on its stdout, when the
 * next one is due (no answer: no more for this run).
 */
static pid_t run_probe(char **start, int *answer)
{
    char *words[] = { HEALTH_WORD, (char *)root, id, NULL };
    /* Test faults are for the start and the exit handler, not for probes. */
    return run_corerun(start, words, answer, 0);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "id ID" and "pid PID" lines of the start's report. */
static void report_line(char *line)
{
    if (report_terminal(line))
        return;
    if (!id[0] && strncmp(line, "id ", 3) == 0 && strlen(line + 3) < sizeof id && strspn(line + 3, "0123456789abcdef") == strlen(line + 3)) {
        strcpy(id, line + 3);
        snprintf(log_path, sizeof log_path, "%s/%s/container.log", root, id);
        if (!log_none)
            open_log();
    } else if (strncmp(line, "pid ", 4) == 0) {
        init_pid = (pid_t)atoi(line + 4);
    } else if (strncmp(line, "health ", 7) == 0) {
        health_first = atoll(line + 7);
    }
}

/*
 * --restart. After each exit the handler (corerun __monitor-exit) decides, by the container's
 * policy, whether it starts again; the monitor waits the delay it names (Docker's backoff:
 * 100 ms doubled each time, reset after a run of 10 s), then runs the same start with
 * CORERUN_RESTART_ID, which reuses the container's state: same id, name, config and log file.
 * stop, kill and rm mark the container stopped by the user and send SIGUSR1, on which a monitor
 * that is waiting gives up and exits.
 */

/*
 * "WORD MS" on a handler's stdout ("restart MS": the delay before the container starts again;
 * "next MS": before its next health check), or -1 when it says nothing of the kind.
 */
static long long answer_ms(int fd, const char *word)
{
    char buf[64];
    ssize_t n, len = 0;
    long long ms = -1;
    size_t wl = strlen(word);

    if (fd < 0)
        return -1;
    while (len < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += n;
    }
    close(fd);
    buf[len] = 0;
    if (strncmp(buf, word, wl) == 0 && buf[wl] == ' ') {
        ms = atoll(buf + wl + 1);
        if (ms < 0)
            ms = 0;
    }
    return ms;
}

/*
 * Once a run after the first has begun (restarted), CORERUN_FAULT_RESTART is the CORERUN_FAULT
 * of its start and handler: the fault walk stops a restarted run at each of the steps that the
 * first run passes too.
 */
static void restart_fault(void)
{
    const char *fault = getenv("CORERUN_FAULT_RESTART");
    if (fault)
        setenv("CORERUN_FAULT", fault, 1);
    else
        unsetenv("CORERUN_FAULT");
}

/* One run of the container: its start, its first process, its exit handler, its output pipes. */
struct run {
    pid_t starter, handler, probe;
    int starter_status, init_status, handler_done, report_open, report_fd, answer_fd, probe_fd;
    long long init_ms, drain_deadline, restart_delay, restart_at;
    /* The next health check: 0 before the first is scheduled, -1 when none is to come. */
    long long probe_at;
};

/*
 * Forks the start (NODE CORERUN_JS ARGS...) with IN (the read end of the run's stdin pipe) as
 * fd 0, the container's output pipes and the report socket; a restart gets CORERUN_RESTART_ID,
 * and its errors go to the container's stderr log.
 */
static int begin_run(struct run *r, char **start, struct stream *so, struct stream *se, int in, int restart)
{
    int outp[2], errp[2], repp[2];

    /* A probe of the run before is left to finish on its own (and be reaped as any child). */
    if (r->probe_fd >= 0)
        close(r->probe_fd);
    memset(r, 0, sizeof *r);
    r->starter_status = r->init_status = -1;
    r->answer_fd = r->probe_fd = -1;
    health_first = -1;
    r->restart_delay = -1;
    init_pid = 0;
    /* The report is a socket: with -t the start sends the pty's fds over it (SCM_RIGHTS). */
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, repp) < 0)
        return -1;
    r->starter = fork();
    if (r->starter < 0)
        return -1;
    if (r->starter == 0) {
        sigset_t none;
        int null = devnull(), fds[3];
        /* Above 5 first, so that no dup2 below overwrites a source. */
        fds[0] = fcntl(outp[1], F_DUPFD_CLOEXEC, 10);
        fds[1] = fcntl(errp[1], F_DUPFD_CLOEXEC, 10);
        fds[2] = fcntl(repp[1], F_DUPFD_CLOEXEC, 10);
        if (null < 0 || fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || dup2(in >= 0 ? in : null, 0) < 0 || dup2(null, 1) < 0 || dup2(fds[0], 3) < 0 ||
            dup2(fds[1], 4) < 0 || dup2(fds[2], 5) < 0 || (restart && dup2(fds[1], 2) < 0))
            _exit(125);
        setenv("CORERUN_STDOUT_FD", "3", 1);
        setenv("CORERUN_STDERR_FD", "4", 1);
        setenv("CORERUN_REPORT_FD", "5", 1);
        if (restart) {
            setenv("CORERUN_RESTART_ID", id, 1);
            restart_fault();
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(start[0], start);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    close(repp[1]);
    so->fd = outp[0];
    se->fd = errp[0];
    r->report_fd = repp[0];
    r->report_open = 1;
    return 0;
}

/* Output that has not ended by the drain deadline: its last partial lines are logged, the pipes let go. */
static void end_output(struct stream *s)
{
    if (s->len)
        log_entry(s->name, s->buf, s->len);
    s->len = 0;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/*
 * The end of a run that is followed by another (--restart): its clients get its status and go,
 * and its stdin pipe and pty peer are let go; the next run's start brings its own.
 */
static void end_run(int code)
{
    attach_end_run(code);
    if (stdin_w >= 0)
        close(stdin_w);
    stdin_w = -1;
    if (tty_peer >= 0)
        close(tty_peer);
    tty_peer = -1;
}

int main(int argc, char **argv)
{
    int in, sfd, i, first_run = 1;
    char **start;
    char rep[256];
    size_t rep_len = 0;
    struct stream so = { .fd = -1, .name = "stdout", .type = 'o' }, se = { .fd = -1, .name = "stderr", .type = 'e' };
    /* A tty container's output: Docker logs it as stdout. */
    struct stream tt = { .fd = -1, .name = "stdout", .type = 'o' };
    struct run r = { .probe_fd = -1 };
    sigset_t mask;

    if (argc == 2 && strcmp(argv[1], "--drain") == 0)
        return drain();
    close_inherited();
    if (argc < 7 || strcmp(argv[4], "--") != 0 ||
        (strcmp(argv[3], "rm") != 0 && strcmp(argv[3], "keep") != 0 && strcmp(argv[3], "hold") != 0 && strcmp(argv[3], "hold-rm") != 0 &&
         strcmp(argv[3], "hold-keep") != 0)) {
        fprintf(stderr, "usage: corerun-monitor ROOT none|LOG_MAX[:FILES] rm|keep|hold|hold-rm|hold-keep -- NODE [NODE_OPTIONS...] [--] CORERUN_JS ARGS...\n");
        return 125;
    }
    root = argv[1];
    /* LOG: none, or MAX_BYTES[:FILES]. */
    log_none = strcmp(argv[2], "none") == 0;
    log_max = atoll(argv[2]);
    if (strchr(argv[2], ':') && atoi(strchr(argv[2], ':') + 1) >= 1)
        log_files = atoi(strchr(argv[2], ':') + 1);
    remove_all = strcmp(argv[3], "rm") == 0 || strcmp(argv[3], "hold-rm") == 0;
    holding = strncmp(argv[3], "hold", 4) == 0;
    hold_keeps = strcmp(argv[3], "hold") == 0;
    start = argv + 5;
    if (log_max < 4096)
        log_max = 4096;

    /* The first process is the start's child: at the start's exit it becomes ours. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("corerun-monitor: prctl(PR_SET_CHILD_SUBREAPER)");
        return 125;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || (in = new_stdin()) < 0 || begin_run(&r, start, &so, &se, in, 0) < 0) {
        perror("corerun-monitor: start");
        return 125;
    }
    fault_point("monitor:forked");
    close(in);
    if (chdir("/") < 0)
        return 125;

    for (;;) {
        struct pollfd p[6 + ATTACH_MAX];
        int n = 0, timeout = -1, give_up = 0;
        struct signalfd_siginfo si;
        pid_t w;
        int st;

        /* The start is over: answer the client once. */
        if (r.starter && r.starter_status >= 0 && !r.report_open && first_run) {
            int ok = WIFEXITED(r.starter_status) && WEXITSTATUS(r.starter_status) == 0 && id[0] && init_pid > 0;
            char msg[96];
            int fd = devnull();
            if (ok) {
                snprintf(msg, sizeof msg, "ok %s\n", id);
            } else {
                int code = status_code(r.starter_status);
                char dir[PATH_MAX];
                snprintf(msg, sizeof msg, "fail %d\n", code ? code : 125);
                /* A start that died without its own teardown (killed) leaves its state: remove it. */
                snprintf(dir, sizeof dir, "%s/%s", root, id);
                if (id[0] && access(dir, F_OK) == 0) {
                    pid_t h = run_handler(start, code ? code : 125, now_ms(), "rm", NULL);
                    while (h > 0 && waitpid(h, &st, 0) < 0 && errno == EINTR)
                        ;
                }
            }
            /* Before the answer: a client may attach as soon as it has the id. */
            if (ok)
                attach_open();
            write_all(1, msg, strlen(msg));
            if (ok && holding)
                hold_pipe = fcntl(1, F_DUPFD_CLOEXEC, 10);
            if (holding && hold_pipe < 0)
                holding = 0;
            hold_pending = holding;
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            fault_point("monitor:reported");
            if (!ok)
                return 0;
            r.starter = 0;
            first_run = 0;
        }
        /* A restart that did not start (or was stopped before): the handler records it and the policy decides. */
        if (r.starter && r.starter_status >= 0 && !r.report_open) {
            if (init_pid <= 0 && r.init_status < 0) {
                int code = status_code(r.starter_status);
                r.init_status = code ? r.starter_status : 0;
                r.init_ms = now_ms();
            }
            r.starter = 0;
        }
        /* The foreground client went while it was starting: its container does not run on. */
        if (hold_lost == 1) {
            hold_lost = 2;
            if (init_pid > 0 && r.init_status < 0)
                kill(init_pid, SIGKILL);
        }
        if (!r.starter && r.init_status >= 0 && !r.handler && !holding) {
            /* hold: a foreground run still attached, or whose client went while starting, ends as foreground runs do, removed. */
            int rm_now = remove_all || (hold_keeps && (hold_client >= 0 || hold_lost));
            fault_point("monitor:exit-handler");
            r.handler = run_handler(start, status_code(r.init_status), r.init_ms, rm_now ? "rm" : "keep", rm_now ? NULL : &r.answer_fd);
            if (r.handler < 0)
                return 1;
        }
        if (r.handler_done) {
            long long now = now_ms();
            int drained = so.fd < 0 && se.fd < 0 && tt.fd < 0;
            /* Whatever still holds the pipes was killed with the cgroup; do not wait for ever. */
            if (!drained && !r.drain_deadline)
                r.drain_deadline = now + 2000;
            if (!drained && now >= r.drain_deadline) {
                end_output(&so);
                end_output(&se);
                end_output(&tt);
                tty_master = -1;
                drained = 1;
            }
            if (drained) {
                if (r.restart_delay < 0)
                    break;
                if (!r.restart_at) {
                    r.restart_at = now + r.restart_delay;
                    end_run(status_code(r.init_status));
                    fault_point("monitor:restart-wait");
                }
                if (now >= r.restart_at) {
                    restarted = 1;
                    if ((in = new_stdin()) < 0 || begin_run(&r, start, &so, &se, in, 1) < 0)
                        break;
                    close(in);
                    fault_point("monitor:restarted");
                    continue;
                }
                timeout = (int)(r.restart_at - now);
            } else {
                timeout = (int)(r.drain_deadline - now);
            }
        }

        /* Health checks: one at a time, while the run's first process lives, once the start has reported. */
        if (health_first >= 0 && init_pid > 0 && r.init_status < 0 && !r.report_open && !r.probe && r.probe_at >= 0) {
            long long now = now_ms();
            if (!r.probe_at)
                r.probe_at = now + health_first;
            if (now >= r.probe_at) {
                r.probe = run_probe(start, &r.probe_fd);
                if (r.probe < 0) {
                    r.probe = 0;
                    r.probe_at = -1;
                }
            } else if (timeout < 0 || r.probe_at - now < timeout) {
                timeout = r.probe_at - now > INT_MAX ? INT_MAX : (int)(r.probe_at - now);
            }
        }

        /*
         * The report before the children: the start writes its last line before it exits, and
         * the first process may be reaped in the same round; its pid must be known by then.
         */
        if (r.report_open) {
            p[n].fd = r.report_fd;
            p[n++].events = POLLIN;
        }
        p[n].fd = sfd;
        p[n++].events = POLLIN;
        /* The container's output is read once its id (and so its log) is known and, with hold, the client is there. */
        if ((id[0] || !r.report_open) && !holding) {
            if (so.fd >= 0) {
                p[n].fd = so.fd;
                p[n++].events = POLLIN;
            }
            if (se.fd >= 0) {
                p[n].fd = se.fd;
                p[n++].events = POLLIN;
            }
            if (tt.fd >= 0) {
                p[n].fd = tt.fd;
                p[n++].events = POLLIN;
            }
        }
        if (hold_pipe >= 0) {
            /* POLLERR once the client has closed its end (or is gone) before its terminal was up. */
            p[n].fd = hold_pipe;
            p[n++].events = 0;
        }
        if (attach_fd >= 0) {
            p[n].fd = attach_fd;
            p[n++].events = POLLIN;
            for (i = 0; i < ATTACH_MAX; i++) {
                if (clients[i]) {
                    p[n].fd = clients[i]->fd;
                    p[n++].events = POLLIN;
                }
            }
        }
        if (poll(p, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (!p[i].revents)
                continue;
            if (p[i].fd == sfd) {
                while (read(sfd, &si, sizeof si) > 0) {
                    /* stop, kill or rm while waiting to restart: the container stays exited. */
                    if (si.ssi_signo == SIGUSR1 && r.restart_at)
                        give_up = 1;
                }
                while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
                    if (w == r.starter)
                        r.starter_status = st;
                    else if (init_pid > 0 && w == init_pid && r.init_status < 0) {
                        r.init_status = st;
                        r.init_ms = now_ms();
                        /* The pty now ends (EIO) once the container's processes have let go of it. */
                        if (tty_peer >= 0)
                            close(tty_peer);
                        tty_peer = -1;
                    } else if (r.probe > 0 && w == r.probe) {
                        long long next = answer_ms(r.probe_fd, "next");
                        r.probe = 0;
                        r.probe_fd = -1;
                        r.probe_at = next < 0 ? -1 : now_ms() + next;
                    } else if (r.handler > 0 && w == r.handler) {
                        r.handler_done = 1;
                        r.restart_delay = answer_ms(r.answer_fd, "restart");
                        r.answer_fd = -1;
                        fault_point("monitor:exit-handler-done");
                    }
                }
            } else if (r.report_open && p[i].fd == r.report_fd) {
                ssize_t got = report_read(r.report_fd, rep + rep_len, sizeof rep - 1 - rep_len);
                if (got <= 0) {
                    if (got < 0 && errno == EINTR)
                        continue;
                    close(r.report_fd);
                    r.report_open = 0;
                    rep_len = 0;
                    /* Without -i (or with -t, where the pty is stdin) nobody writes the pipe. */
                    if (stdin_w >= 0 && (!keep_stdin || tty_master >= 0)) {
                        close(stdin_w);
                        stdin_w = -1;
                    }
                    continue;
                }
                rep_len += (size_t)got;
                rep[rep_len] = 0;
                for (char *nl; (nl = memchr(rep, '\n', rep_len));) {
                    *nl = 0;
                    report_line(rep);
                    rep_len -= (size_t)(nl + 1 - rep);
                    memmove(rep, nl + 1, rep_len);
                }
                if (rep_len == sizeof rep - 1)
                    rep_len = 0;
                if (tty_master >= 0 && tt.fd < 0 && tt.len == 0)
                    tt.fd = tty_master;
            } else if (p[i].fd == so.fd) {
                pump(&so);
            } else if (p[i].fd == se.fd) {
                pump(&se);
            } else if (p[i].fd == tt.fd) {
                if (!pump(&tt))
                    tty_master = -1;
            } else if (hold_pipe >= 0 && p[i].fd == hold_pipe) {
                /*
                 * The client's pipe closed (only that process holds it): it is gone, or gave up.
                 * An 'a' it sent before it went waits in its connection, which may wait to be
                 * accepted: read first, then decide.
                 */
                attach_accept();
                for (int k = 0; k < ATTACH_MAX && hold_pending; k++)
                    if (clients[k])
                        client_read(k);
                if (hold_pending)
                    hold_gone();
            } else if (p[i].fd == attach_fd) {
                attach_accept();
            } else {
                for (int k = 0; k < ATTACH_MAX; k++)
                    if (clients[k] && clients[k]->fd == p[i].fd)
                        client_read(k);
            }
        }
        if (give_up)
            break;
    }
    if (so.len)
        log_entry(so.name, so.buf, so.len);
    if (se.len)
        log_entry(se.name, se.buf, se.len);
    if (tt.len)
        log_entry(tt.name, tt.buf, tt.len);
    attach_close(r.init_status >= 0 ? status_code(r.init_status) : 125);
    return 0;
}
