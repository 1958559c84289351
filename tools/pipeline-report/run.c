/* run.c — the stage runner of the travel driver: one tool process per stage,
 * timed, retried once in lightweight mode after exit 75 (docs/DESIGN.md: "not
 * enough VRAM now"), and followed by a vram-probe check that the device's
 * free VRAM came back to where it was before the stage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "travel.h"

static const char *exit_meaning(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case 64: return "usage error";
    case 65: return "bad input data";
    case 66: return "input missing";
    case 69: return "model unavailable";
    case 70: return "internal error";
    case 73: return "cannot create output";
    case 74: return "I/O error";
    case 75: return "not enough VRAM/RAM now";
    case 127: return "command not found";
    case 130: return "interrupted";
    }
    return rc > 128 ? "killed by a signal" : "failed";
}

/* Signals (issue 11): the stage tool runs in a process group of its own, so
 * a terminal's ^C reaches it once, through the runner, which forwards
 * SIGINT/SIGTERM/SIGHUP to that group, waits for the tool to clean up and
 * exit, records the end and exits 130. A tool whose runner dies (even by
 * SIGKILL) gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and stops
 * before it publishes anything. */
static volatile sig_atomic_t g_child, g_signal;

static void forward_signal(int sig)
{
    g_signal = sig;
    pid_t c = g_child;
    if (c > 0 && kill(-c, sig) != 0) kill(c, sig); /* the group may not exist yet */
}

static void install_forwarding(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* fork/exec argv; stdout to out_fd when >= 0 (else inherited). Returns the
 * exit status (128+signal when killed), or a negative status. */
static int spawn_wait(char **argv, int out_fd)
{
    if (g_signal) return 128 + g_signal; /* interrupted before this command started */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return iso_fail(ISO_EINTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(130); /* the runner died before prctl */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        if (out_fd >= 0) dup2(out_fd, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "pipeline-report: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* both sides, so a signal right after fork finds the group */
    g_child = pid;
    if (g_signal) forward_signal(g_signal); /* arrived while forking */
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) { g_child = 0; return iso_fail(ISO_EINTERNAL, "waitpid: %s", strerror(errno)); }
    g_child = 0;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 255;
}

/* Runs the probe with extra arguments and parses its JSON stdout. */
static int probe_json(const char *probe, char **extra, json_t **out, int *exit_code)
{
    /* -q: the probe's "no CUDA" / "fake device" notes would repeat for every stage */
    char *argv[10] = { (char *)probe, "-q" };
    int n = 2;
    for (; extra && extra[n - 2] && n < 9; n++) argv[n] = extra[n - 2];
    argv[n] = NULL;
    *out = NULL;
    char tmpl[] = "/tmp/isopipe-probe-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return iso_fail(ISO_EIO, "cannot create a temporary file: %s", strerror(errno));
    unlink(tmpl);
    int rc = spawn_wait(argv, fd);
    if (rc < 0) { close(fd); return rc; }
    *exit_code = rc;
    off_t len = lseek(fd, 0, SEEK_END);
    if (len > 0 && len < (1 << 20)) {
        char *buf = malloc((size_t)len + 1);
        if (buf && pread(fd, buf, (size_t)len, 0) == (ssize_t)len) {
            buf[len] = 0;
            *out = json_loadb(buf, (size_t)len, 0, NULL);
        }
        free(buf);
    }
    close(fd);
    return 0;
}

/* device free VRAM in bytes from a vram-probe JSON answer: {"device": {"free": ...}}
 * or a top-level "free"; -1 when it names no device */
static double probe_free_bytes(const json_t *j)
{
    if (!j) return -1;
    const json_t *d = json_object_get(j, "device");
    if (json_is_object(d) && json_is_number(json_object_get(d, "free"))) return jsonio_num(d, "free", -1);
    if (json_is_number(json_object_get(j, "free"))) return jsonio_num(j, "free", -1);
    if (json_is_number(json_object_get(j, "free_mib"))) return jsonio_num(j, "free_mib", -1) * 1048576.0;
    return -1;
}

static void run_log(const char *dir, const char *fmt, const char *name, int rc, double wall)
{
    char *path = fs_join(dir, "run.log");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0) return;
    char line[512];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, fmt, name, rc, wall);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* one write(2) per line so parallel stages do not interleave */
    if (write(fd, line, (size_t)n) < 0) { /* the log is a convenience; the record is what counts */ }
    close(fd);
}

int travel_sweep(const char *dir, int *removed)
{
    /* temporaries left by a kill -9 or a power loss will never be published */
    int n = fs_sweep_stale_tmp(dir);
    if (removed) *removed = n;
    return 0;
}

static int attempt(const struct travel_run_opts *o, int argc, char **argv, const char *mode,
                   const char *logjson, json_t *attempts, int *exit_code)
{
    char **av = calloc((size_t)argc + 7, sizeof *av);
    if (!av) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int i = 0; i < argc; i++) av[i] = argv[i];
    int n = argc;
    av[n++] = "--memory-mode";
    av[n++] = (char *)mode;
    av[n++] = "--task-id";
    av[n++] = (char *)o->name;
    av[n++] = "--log-json";
    av[n++] = (char *)logjson;
    av[n] = NULL;
    double t0 = mem_now();
    int rc = spawn_wait(av, -1);
    double wall = mem_now() - t0;
    free(av);
    if (rc < 0) return rc;
    *exit_code = rc;
    json_array_append_new(attempts, json_pack("{s:s, s:i, s:f}", "mode", mode, "exit_code", rc, "wall_s", wall));
    return 0;
}

int travel_run(const struct travel_run_opts *o, int argc, char **argv)
{
    int rc = 0, code = 0, retries = 0;
    char *records = NULL, *logs = NULL, *logjson = NULL, *recfile = NULL, *recname = NULL;
    json_t *rec = NULL, *attempts = json_array(), *vram = json_object(), *before = NULL, *after = NULL;
    const char *mode = o->mode ? o->mode : "auto";
    /* the wall clock to the microsecond: whole seconds made report.json's
     * elapsed (last end - first start) shorter than the stages it spans */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double started = (double)now.tv_sec + now.tv_nsec * 1e-9, t0 = mem_now();

    install_forwarding();
    if (!attempts || !vram) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (argc < 1) { rc = iso_fail(ISO_EUSAGE, "run: no command after '--'"); goto done; }
    records = fs_join(o->dir, "records");
    logs = fs_join(o->dir, "logs");
    if (!records || !logs) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = fs_mkdir_p(records)) || (rc = fs_mkdir_p(logs))) goto done;
    if (asprintf(&recname, "%s.json", o->name) < 0) { recname = NULL; rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    recfile = fs_join(records, recname);
    free(recname);
    if (asprintf(&recname, "%s.jsonl", o->name) < 0) { recname = NULL; rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    logjson = fs_join(logs, recname);
    if (!recfile || !logjson) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }

    /* free VRAM before the stage: the baseline it must give back */
    double base = -1;
    int have_probe = o->probe && access(o->probe, X_OK) == 0, pcode = 0;
    if (have_probe) {
        if ((rc = probe_json(o->probe, NULL, &before, &pcode))) goto done;
        if (pcode == 0) base = probe_free_bytes(before);
    }

    if (o->sweep) {
        int gone = 0;
        travel_sweep(o->sweep, &gone);
        if (gone) log_info("removed %d temporary output%s left by an interrupted run in '%s'", gone,
                           gone == 1 ? "" : "s", o->sweep);
    }
    run_log(o->dir, "start %s", o->name, 0, 0);
    if ((rc = attempt(o, argc, argv, mode, logjson, attempts, &code))) goto done;
    if (code == 75 && !g_signal && (strcmp(mode, "auto") == 0 || strcmp(mode, "beefy") == 0)) {
        log_warn("stage '%s' exited 75 (not enough VRAM now) in %s mode; retrying once in lightweight mode",
                 o->name, mode);
        retries = 1;
        if ((rc = attempt(o, argc, argv, "lightweight", logjson, attempts, &code))) goto done;
    }
    double wall = mem_now() - t0;

    /* did the stage use the GPU? its JSON says which mode it ran in */
    const char *used_mode = NULL;
    json_t *out = NULL;
    if (code == 0 && o->json && jsonio_load(o->json, &out) == 0) {
        json_t *m = json_object_get(out, "memory");
        used_mode = jsonio_str(m, "mode", NULL);
    }
    iso_errclear();
    int used_gpu = used_mode && strcmp(used_mode, "cpu") != 0;
    if (g_signal) {
        /* interrupted: the tool was told and has exited; no VRAM wait, just the record */
        json_object_set_new(vram, "device", json_null());
        json_object_set_new(vram, "note", json_string("interrupted; no check"));
    } else if (!have_probe) {
        json_object_set_new(vram, "device", json_false());
        json_object_set_new(vram, "note", json_string(o->probe ? "no GPU (vram-probe not built)" : "no GPU check asked"));
    } else if (base < 0) {
        json_object_set_new(vram, "device", json_false());
        json_object_set_new(vram, "note", json_string("no GPU"));
    } else if (!used_gpu) {
        json_object_set_new(vram, "device", json_true());
        json_object_set_new(vram, "baseline_free", json_integer((json_int_t)base));
        json_object_set_new(vram, "note", json_string(code ? "stage failed; no check" : "stage ran on the CPU; no check"));
    } else {
        /* vram-probe --wait-baseline polls until free VRAM is back within its
         * tolerance of the figure taken before the stage, or times out */
        char mib[32], tmo[32], tol[32];
        snprintf(mib, sizeof mib, "%.0f", base / 1048576.0);
        snprintf(tmo, sizeof tmo, "%g", o->baseline_timeout > 0 ? o->baseline_timeout : 30);
        snprintf(tol, sizeof tol, "%d", o->baseline_tol_mib);
        char *extra[7] = { "--wait-baseline", mib, "--timeout", tmo, NULL, NULL, NULL };
        if (o->baseline_tol_mib > 0) { extra[4] = "--tolerance"; extra[5] = tol; }
        double w0 = mem_now();
        int wcode = 0;
        if ((rc = probe_json(o->probe, extra, &after, &wcode))) { json_decref(out); goto done; }
        double af = probe_free_bytes(after);
        json_object_set_new(vram, "device", json_true());
        json_object_set_new(vram, "baseline_free", json_integer((json_int_t)base));
        if (af >= 0) json_object_set_new(vram, "after_free", json_integer((json_int_t)af));
        json_object_set_new(vram, "returned", json_boolean(wcode == 0));
        json_object_set_new(vram, "waited_s", json_real(mem_now() - w0));
        if (wcode != 0)
            log_warn("stage '%s': free VRAM did not come back to %s MiB within %s s", o->name, mib, tmo);
    }
    json_decref(out);

    rec = jsonio_header_new();
    json_t *av = json_array();
    for (int i = 0; i < argc; i++) json_array_append_new(av, json_string(argv[i]));
    json_object_set_new(rec, "stage", json_string(o->name));
    json_object_set_new(rec, "kind", json_string(o->kind ? o->kind : ""));
    if (o->json) jsonio_set_path(rec, "output", recfile, o->json);
    json_object_set_new(rec, "argv", av);
    json_object_set_new(rec, "started", json_real(started));
    json_object_set_new(rec, "wall_s", json_real(wall));
    json_object_set_new(rec, "exit_code", json_integer(code));
    json_object_set_new(rec, "retries", json_integer(retries));
    json_object_set_new(rec, "attempts", json_incref(attempts));
    json_object_set_new(rec, "vram", json_incref(vram));
    if (g_signal) json_object_set_new(rec, "signal", json_string(strsignal(g_signal)));
    if ((rc = jsonio_write_atomic(recfile, rec))) goto done;
    run_log(o->dir, "end %s exit=%d wall=%.3fs", o->name, code, wall);
    if (g_signal) {
        log_error("stage '%s' interrupted (%s): the tool stopped with exit %d; the run stops here", o->name,
                  strsignal(g_signal), code);
        code = 130;
    } else if (code != 0) {
        log_error("stage '%s' failed with exit %d (%s)%s; the run stops here", o->name, code, exit_meaning(code),
                  retries ? " after a retry in lightweight mode" : "");
    }
    rc = code;
done:
    json_decref(rec);
    json_decref(attempts);
    json_decref(vram);
    json_decref(before);
    json_decref(after);
    free(records);
    free(logs);
    free(logjson);
    free(recfile);
    free(recname);
    return rc;
}
