/* nsnet's fast client (built to dist/nsnet-fast by scripts/bundle.mjs; bin/nsnet execs it when it exists).
 *
 * Starting Node costs ≈20-30 ms on these machines, more than everything a command does. When a resident helper
 * serves this state directory, host netns, mount namespace and build (src/cli/helper.ts), this program hands it
 * the command line over a Unix socket and relays its output and exit status; it starts the processes of
 * containers itself when the helper asks (so they are this client's children, in its cgroup, with its rlimits,
 * session and environment). In every other case it execs Node, which runs the command in-process: no helper,
 * a helper that does not serve this client or command ('N'), a helper busy for longer than NSNET_HELPER_WAIT_MS
 * (default 200 ms), a helper that ended before it started the command.
 *
 * All the decisions about which commands are served and whether a client may be served are the helper's
 * (TypeScript); this file only finds the socket (the same path as client.ts helperPlan), checks that the directory
 * and the peer are root's, and speaks the protocol described in helper.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int g_argc;
static char **g_argv;
static char g_dist[PATH_MAX];
static volatile sig_atomic_t g_interrupted;
/* `nsnet cni`: its whole stdin (the CNI network configuration), read before the helper is asked. */
static char *g_input;
static size_t g_input_len;
static int g_input_read;


static int write_all(int fd, const void *buf, size_t len);

/* Runs the command in-process: Node with dist/nsnet-start.cjs. `helper_up`: a helper serves, not this command. */
static void exec_node(int helper_up) {
    char start[PATH_MAX + 32];
    snprintf(start, sizeof start, "%s/nsnet-start.cjs", g_dist);
    char **av = calloc((size_t)g_argc + 4, sizeof *av);
    if (!av) _exit(1);
    int n = 0;
    av[n++] = "node";
    av[n++] = start;
    if (helper_up) av[n++] = "--nsnet-helper-up";
    for (int i = 1; i < g_argc; i++) av[n++] = g_argv[i];
    av[n] = NULL;
    unsetenv("NODE_EXTRA_CA_CERTS"); /* see bin/nsnet */
    if (g_input_read) {
        /* What was read from stdin goes to Node's stdin, as if never read. */
        int m = memfd_create("nsnet-stdin", 0);
        if (m < 0 || write_all(m, g_input, g_input_len) < 0 || lseek(m, 0, SEEK_SET) < 0 || dup2(m, 0) < 0) {
            fprintf(stderr, "Error: cannot hand the standard input on: %s\n", strerror(errno));
            _exit(1);
        }
        close(m);
    }
    execvp("node", av);
    fprintf(stderr, "Error: cannot run node: %s\n", strerror(errno));
    _exit(1);
}

static int trusted_dir(const char *dir) {
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 && (st.st_mode & 022) == 0;
}

static void base36(unsigned long long v, char *out) {
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { /* a non-blocking pipe that is full: wait for the reader */
                struct pollfd pf = { fd, POLLOUT, 0 };
                poll(&pf, 1, 100);
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int send_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, char type, const void *payload, uint32_t len) {
    unsigned char head[5] = { (unsigned char)type, (unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
    if (send_all(fd, head, 5) < 0) return -1;
    return len ? send_all(fd, payload, len) : 0;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes. 1: done, 0: end of stream, -1: error, -2: deadline passed (deadline < 0: none). */
static int read_exact(int fd, void *buf, size_t len, long long deadline) {
    char *p = buf;
    while (len) {
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) return -2;
            struct pollfd pf = { fd, POLLIN, 0 };
            int r = poll(&pf, 1, (int)left);
            if (r < 0 && errno != EINTR) return -1;
            if (r <= 0) continue;
        }
        ssize_t got = recv(fd, p, len, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return errno == ECONNRESET ? 0 : -1;
        }
        if (got == 0) return 0;
        p += got;
        len -= (size_t)got;
    }
    return 1;
}

/* Next frame: 1 ok (payload malloc'd, NUL-terminated), or read_exact's codes. */
static int recv_frame(int fd, char *type, char **payload, uint32_t *len, long long deadline) {
    unsigned char head[5];
    int r = read_exact(fd, head, 5, deadline);
    if (r != 1) return r;
    *type = (char)head[0];
    *len = (uint32_t)head[1] | (uint32_t)head[2] << 8 | (uint32_t)head[3] << 16 | (uint32_t)head[4] << 24;
    if (*len > (64u << 20)) return -1;
    *payload = malloc((size_t)*len + 1);
    if (!*payload) return -1;
    if (*len) {
        r = read_exact(fd, *payload, *len, deadline < 0 ? -1 : deadline + 60000);
        if (r != 1) {
            free(*payload);
            return r;
        }
    }
    (*payload)[*len] = 0;
    return 1;
}

/* A growable buffer of NUL-terminated strings. */
struct buf { char *p; size_t len, cap; };
static void put(struct buf *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) _exit(1);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* A CNI network configuration's top-level "root" (its state directory), when it is a plain JSON string: the helper
 * to ask is that directory's. *unsure is set when the document is not an object this scanner can read, or the
 * value has escapes: the command then runs in-process, which reads the configuration properly. */
static size_t json_skip_ws(const char *p, size_t i, size_t n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    return i;
}
/* Index after the JSON string starting at p[i] == '"', or n on error; *esc set if it has a backslash. */
static size_t json_skip_string(const char *p, size_t i, size_t n, int *esc) {
    for (i++; i < n; i++) {
        if (p[i] == '\\') { *esc = 1; i++; continue; }
        if (p[i] == '"') return i + 1;
    }
    return n;
}
/* Index after the JSON value at p[i], or n on error. */
static size_t json_skip_value(const char *p, size_t i, size_t n, int depth) {
    int esc = 0;
    if (i >= n || depth > 64) return n;
    if (p[i] == '"') return json_skip_string(p, i, n, &esc);
    if (p[i] == '{' || p[i] == '[') {
        char close = p[i] == '{' ? '}' : ']';
        i = json_skip_ws(p, i + 1, n);
        if (i < n && p[i] == close) return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= n || p[i] != '"') return n;
                i = json_skip_ws(p, json_skip_string(p, i, n, &esc), n);
                if (i >= n || p[i] != ':') return n;
                i = json_skip_ws(p, i + 1, n);
            }
            i = json_skip_ws(p, json_skip_value(p, i, n, depth + 1), n);
            if (i >= n) return n;
            if (p[i] == close) return i + 1;
            if (p[i] != ',') return n;
            i = json_skip_ws(p, i + 1, n);
        }
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n' && p[i] != '\t' && p[i] != '\r') i++;
    return i;
}
static char *json_root(const char *p, size_t n, int *unsure) {
    size_t i = json_skip_ws(p, 0, n);
    if (i >= n || p[i] != '{') { *unsure = 1; return NULL; }
    i = json_skip_ws(p, i + 1, n);
    while (i < n && p[i] != '}') {
        int esc = 0;
        if (p[i] != '"') { *unsure = 1; return NULL; }
        size_t k0 = i + 1, k1 = json_skip_string(p, i, n, &esc);
        if (k1 >= n) { *unsure = 1; return NULL; }
        int is_root = !esc && k1 - 1 - k0 == 4 && !memcmp(p + k0, "root", 4);
        i = json_skip_ws(p, k1, n);
        if (i >= n || p[i] != ':') { *unsure = 1; return NULL; }
        i = json_skip_ws(p, i + 1, n);
        if (is_root) {
            if (i >= n || p[i] != '"') return NULL; /* not a string: the command reports it */
            size_t v0 = i + 1, v1 = json_skip_string(p, i, n, &esc);
            if (esc || v1 > n || v1 - 1 <= v0) { *unsure = 1; return NULL; }
            return strndup(p + v0, v1 - 1 - v0);
        }
        i = json_skip_ws(p, json_skip_value(p, i, n, 1), n);
        if (i < n && p[i] == ',') i = json_skip_ws(p, i + 1, n);
        else if (i >= n || p[i] != '}') { *unsure = 1; return NULL; }
    }
    return NULL;
}

/* Output frames received, in order, written out at the end. */
struct chunk { int fd; char *p; uint32_t len; };
struct chunks { struct chunk *v; size_t n, cap; };
static void keep(struct chunks *c, int fd, char *p, uint32_t len) {
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        if (!c->v) _exit(1);
    }
    c->v[c->n++] = (struct chunk){ fd, p, len };
}
static void flush(struct chunks *c) {
    for (size_t k = 0; k < c->n; k++) {
        write_all(c->v[k].fd, c->v[k].p, c->v[k].len);
        free(c->v[k].p);
    }
    c->n = 0;
}

/* 'L': start a detached process as the helper asks: its own session, stdin /dev/null, stdout and stderr appended
 * to the log, in the given netns and directory, with exactly the given environment (what Node's
 * spawn(..., { detached: true, stdio: ['ignore', log, log] }) does in-process). Replies 'P'. */
static int launch(int sock, char *p, uint32_t len) {
    char *end = p + len;
    char *field[4];
    for (int i = 0; i < 4; i++) {
        if (p >= end) return -1;
        field[i] = p;
        p += strlen(p) + 1;
    }
    const char *netns = field[0], *log = field[1], *cwd = field[2];
    long argc = strtol(field[3], NULL, 10);
    if (argc <= 0 || argc > 100000) return -1;
    char **av = calloc((size_t)argc + 1, sizeof *av);
    size_t envc = 0;
    for (char *q = p; q < end; q += strlen(q) + 1) envc++;
    char **ev = calloc(envc + 1, sizeof *ev);
    if (!av || !ev) return -1;
    for (long i = 0; i < argc; i++) {
        if (p >= end) return -1;
        av[i] = p;
        p += strlen(p) + 1;
    }
    size_t e = 0;
    for (; p < end && e < envc; p += strlen(p) + 1) ev[e++] = p;
    ev[e] = NULL;

    int pipefd[2];
    char reply[256];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(reply, sizeof reply, "E%s", strerror(errno));
        return send_frame(sock, 'P', reply, (uint32_t)strlen(reply));
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        int err = 0;
        if (netns[0]) {
            int nfd = open(netns, O_RDONLY | O_CLOEXEC);
            if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0) err = errno;
        }
        int lfd = err ? -1 : open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (!err && lfd < 0) err = errno;
        int nul = err ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (!err && nul < 0) err = errno;
        if (!err && (dup2(nul, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)) err = errno;
        if (!err && cwd[0] && chdir(cwd) < 0) err = errno;
        if (!err) {
            execve(av[0], av, ev);
            err = errno;
        }
        ssize_t w = write(pipefd[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        snprintf(reply, sizeof reply, "E%s", strerror(errno));
        return send_frame(sock, 'P', reply, (uint32_t)strlen(reply));
    }
    int err = 0;
    ssize_t r;
    do r = read(pipefd[0], &err, sizeof err); while (r < 0 && errno == EINTR);
    close(pipefd[0]);
    if (r == (ssize_t)sizeof err) {
        waitpid(pid, NULL, 0);
        snprintf(reply, sizeof reply, "E%s", strerror(err));
    } else {
        snprintf(reply, sizeof reply, "%d", (int)pid);
    }
    free(av);
    free(ev);
    return send_frame(sock, 'P', reply, (uint32_t)strlen(reply));
}

/* Interrupted after the start: the command runs to its end in the helper (stopping half-way would leave what a
 * crash leaves); say so, and stop waiting at a second interruption. */
static void on_signal(int sig) {
    static const char note[] = "nsnet: interrupted, but the command had already started: it runs to its end (interrupt again to stop waiting)\n";
    if (g_interrupted++) _exit(128 + sig);
    ssize_t w = write(2, note, sizeof note - 1);
    (void)w;
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "Error: cannot find nsnet's installation (/proc/self/exe)\n");
        return 1;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    snprintf(g_dist, sizeof g_dist, "%s", self);

    static const char *in_process_env[] = { "NSNET_NO_HELPER", "NSNET_CRASH_AT", "NSNET_TRACE_POINTS" };
    for (size_t i = 0; i < sizeof in_process_env / sizeof *in_process_env; i++) {
        const char *v = getenv(in_process_env[i]);
        if (v && *v) exec_node(0);
    }
    if (geteuid() != 0) exec_node(0);

    /* Global options, as client.ts globals(). */
    const char *root = NULL, *hostns = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--root") && i + 1 < argc) root = argv[++i];
        else if (!strncmp(a, "--root=", 7)) root = a + 7;
        else if (!strcmp(a, "--host-netns") && i + 1 < argc) hostns = argv[++i];
        else if (!strncmp(a, "--host-netns=", 13)) hostns = a + 13;
        else exec_node(0);
    }
    if (i >= argc) exec_node(0);
    if (!root) root = getenv("NSNET_ROOT");
    if (!root) root = "/var/lib/nsnet";
    if (!hostns) hostns = getenv("NSNET_HOST_NETNS");
    if (!*root || (hostns && !*hostns)) exec_node(0);
    if (!strcmp(argv[i], "cni")) {
        size_t cap = 65536;
        g_input = malloc(cap);
        for (;;) {
            if (!g_input) _exit(1);
            ssize_t r = read(0, g_input + g_input_len, cap - g_input_len);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            g_input_len += (size_t)r;
            if (g_input_len == cap) {
                if (cap >= (8u << 20)) break; /* far more than any configuration: the command reports it */
                cap *= 2;
                g_input = realloc(g_input, cap);
            }
        }
        g_input_read = 1;
        /* The configuration's `root` names the state directory (the plugin honours it before NSNET_ROOT). */
        int unsure = 0;
        char *croot = json_root(g_input, g_input_len, &unsure);
        if (unsure) exec_node(0);
        if (croot) root = croot;
    }

    char real[PATH_MAX], hdir[PATH_MAX + 16], bundle[PATH_MAX + 16];
    if (!realpath(root, real)) exec_node(0);
    snprintf(hdir, sizeof hdir, "%s/helper", real);
    if (!trusted_dir(real) || !trusted_dir(hdir)) exec_node(0);
    struct stat nst, mst, bst;
    snprintf(bundle, sizeof bundle, "%s/nsnet.cjs", g_dist);
    if (stat(hostns ? hostns : "/proc/self/ns/net", &nst) < 0 || stat("/proc/self/ns/mnt", &mst) < 0 || stat(bundle, &bst) < 0) exec_node(0);
    char mt[32], sz[32];
    base36((unsigned long long)bst.st_mtim.tv_sec * 1000 + (unsigned long long)bst.st_mtim.tv_nsec / 1000000, mt);
    base36((unsigned long long)bst.st_size, sz);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int pl = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%llu-%llu-%s%s.sock", hdir,
                      (unsigned long long)nst.st_ino, (unsigned long long)mst.st_ino, mt, sz);
    if (pl < 0 || (size_t)pl >= sizeof addr.sun_path) exec_node(0);

    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) exec_node(0);
    /* The reply must come from root: the directory is root's only, and the peer must be too. */
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) exec_node(0);

    signal(SIGPIPE, SIG_IGN);
    char cwd[PATH_MAX], num[32];
    if (!getcwd(cwd, sizeof cwd)) exec_node(0);
    struct buf req = { 0 };
    put(&req, "nsnet1");
    put(&req, cwd);
    snprintf(num, sizeof num, "%d", argc - 1);
    put(&req, num);
    for (int k = 1; k < argc; k++) put(&req, argv[k]); /* the whole command line, global options included */
    for (char **e = environ; *e; e++) put(&req, *e);
    if (g_input_read && send_frame(sock, 'I', g_input, (uint32_t)g_input_len) < 0) exec_node(0);
    if (send_frame(sock, 'Q', req.p, (uint32_t)req.len) < 0) exec_node(0);
    free(req.p);

    const char *w = getenv("NSNET_HELPER_WAIT_MS");
    long wait_ms = w && *w ? strtol(w, NULL, 10) : 200;
    char type;
    char *payload;
    uint32_t len;
    /* Until 'G' is sent, closing the socket (by exec, or by dying on Ctrl-C) cancels: the helper never starts
     * a request it has no 'G' for. */
    int r = recv_frame(sock, &type, &payload, &len, now_ms() + wait_ms);
    if (r != 1) exec_node(r == -2); /* busy: bypassed; ended: it started nothing */
    if (type != 'S') {
        if (getenv("NSNET_HELPER_TRACE") && type == 'N') fprintf(stderr, "nsnet: not served by the helper: %s\n", payload);
        exec_node(1);
    }
    free(payload);
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (send_frame(sock, 'G', NULL, 0) < 0) exec_node(1);

    struct chunks out = { 0 };
    for (;;) {
        r = recv_frame(sock, &type, &payload, &len, -1);
        if (r != 1) {
            flush(&out);
            fprintf(stderr, "Error: the nsnet helper ended during the command (see %s/log); the next nsnet command finishes or rolls back what it left\n", hdir);
            return 1;
        }
        switch (type) {
        case 'O':
        case 'E':
            /* Kept until the end: a reader that does not drain our stdout (`nsnet inspect ... | less`) must hold up
             * this client only, never the helper, which serves everyone. Order between the two is kept. */
            keep(&out, type == 'O' ? 1 : 2, payload, len);
            payload = NULL;
            break;
        case 'L':
            if (launch(sock, payload, len) < 0) {
                fprintf(stderr, "Error: the nsnet helper sent a bad request\n");
                return 1;
            }
            break;
        case 'X': {
            int code = (int)strtol(payload, NULL, 10);
            flush(&out);
            if (getenv("NSNET_HELPER_TRACE")) fprintf(stderr, "nsnet: served by the helper in %s\n", addr.sun_path);
            return code;
        }
        default:
            break;
        }
        free(payload);
    }
}
