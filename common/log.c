#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

static char g_tool[64] = "isopipe";
static char g_task[64];
static enum log_level g_level = LOG_INFO;
static int g_json_fd = -1;

void log_new_task_id(char *buf, size_t n)
{
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        r = (unsigned)tv.tv_usec * 2654435761u ^ (unsigned)getpid();
    }
    snprintf(buf, n, "%08x", r);
}

int log_init(const char *tool, const char *task_id, enum log_level level, const char *json_path)
{
    snprintf(g_tool, sizeof g_tool, "%s", tool ? tool : "isopipe");
    if (task_id && *task_id)
        snprintf(g_task, sizeof g_task, "%s", task_id);
    else if (!g_task[0])
        log_new_task_id(g_task, sizeof g_task);
    g_level = level;
    if (json_path && *json_path) {
        if (g_json_fd >= 0) close(g_json_fd);
        g_json_fd = open(json_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (g_json_fd < 0)
            return iso_fail(ISO_ECANTCREAT, "cannot open log file '%s': %s", json_path, strerror(errno));
    }
    return 0;
}

void log_close(void)
{
    if (g_json_fd >= 0) close(g_json_fd);
    g_json_fd = -1;
}

const char *log_tool(void) { return g_tool; }
const char *log_task_id(void)
{
    if (!g_task[0]) log_new_task_id(g_task, sizeof g_task);
    return g_task;
}
enum log_level log_get_level(void) { return g_level; }
void log_set_level(enum log_level level) { g_level = level; }

static void vline(const char *tag, const char *fmt, va_list ap)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "[%s] %s: ", log_task_id(), tag);
    if (n < 0 || n >= (int)sizeof buf) n = 0;
    int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    buf[len++] = '\n';
    /* one write: lines from parallel processes sharing stderr stay whole */
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > g_level) return;
    va_list ap;
    va_start(ap, fmt);
    vline(g_tool, fmt, ap);
    va_end(ap);
    if (level <= LOG_WARN && g_json_fd >= 0) {
        char msg[1024];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_event(level == LOG_ERROR ? "error" : "warning", json_pack("{s:s}", "message", msg));
    }
}

void log_tagged(enum log_level level, const char *tag, const char *fmt, ...)
{
    if (level > g_level) return;
    char t[80];
    snprintf(t, sizeof t, "%s", tag);
    /* "[TASK] [RAM] label: ..." — the tag replaces the tool name */
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char line[4300];
    int n = snprintf(line, sizeof line, "[%s] %s %s\n", log_task_id(), t, buf);
    if (n > (int)sizeof line - 1) n = sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_event(const char *event, json_t *fields)
{
    if (g_json_fd < 0) { json_decref(fields); return; }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_object();
    json_object_set_new(o, "time", json_real((double)ts.tv_sec + ts.tv_nsec * 1e-9));
    json_object_set_new(o, "task_id", json_string(log_task_id()));
    json_object_set_new(o, "tool", json_string(g_tool));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "event", json_string(event));
    if (fields && json_is_object(fields)) json_object_update(o, fields);
    json_decref(fields);
    /* 15 significant digits: epoch seconds keep their microseconds (10
     * digits would round "time" to whole seconds), and decimal values such
     * as 41.2 still print as written */
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (!s) return;
    size_t len = strlen(s);
    char *line = malloc(len + 2);
    if (line) {
        memcpy(line, s, len);
        line[len] = '\n';
        ssize_t w = write(g_json_fd, line, len + 1);
        (void)w;
        free(line);
    }
    free(s);
}

int log_progress_ok(void)
{
    return g_level >= LOG_INFO && isatty(STDERR_FILENO);
}

void log_progress(const char *label, long done, long total)
{
    if (!log_progress_ok()) return;
    const char *nc = getenv("NO_COLOR");
    int color = !(nc && *nc);
    int width = 30, fill = total > 0 ? (int)(done * width / total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %s%s%s [%s] %ld/%ld", log_task_id(), color ? "\033[1m" : "", label,
            color ? "\033[0m" : "", bar, done, total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}
