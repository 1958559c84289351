/* test_log.c — the logger (common/log.c): the task-id prefix, levels,
 * tagged lines, and JSON Lines events that stay one valid object per line
 * even when several processes append to the same file at once. */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "test.h"

static char dir[600];
static int saved_err = -1;

/* stderr goes to a file until capture_end returns its content (malloc'd) */
static char cap_path[700];
static void capture_begin(void)
{
    snprintf(cap_path, sizeof cap_path, "%s/stderr.txt", dir);
    fflush(stderr);
    saved_err = dup(2);
    int fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}
static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    char *d = NULL;
    size_t n;
    if (fs_read_all(cap_path, &d, &n, 1 << 20)) return strdup("");
    return d;
}

static json_t *read_lines(const char *path, int *nlines, int *bad)
{
    json_t *arr = json_array();
    char *d;
    size_t n;
    *nlines = *bad = 0;
    if (fs_read_all(path, &d, &n, 1 << 26)) return arr;
    if (n && d[n - 1] != '\n') (*bad)++; /* every event ends its line */
    char *save = NULL;
    for (char *l = strtok_r(d, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        (*nlines)++;
        json_error_t e;
        json_t *j = json_loads(l, 0, &e);
        if (!json_is_object(j)) { (*bad)++; json_decref(j); continue; }
        json_array_append_new(arr, j);
    }
    free(d);
    return arr;
}

static void test_lines(void)
{
    TEST("prefix and levels");
    CHECK(log_init("stitch", "T1234", LOG_INFO, NULL) == 0);
    CHECK_STR(log_tool(), "stitch");
    CHECK_STR(log_task_id(), "T1234");
    capture_begin();
    log_info("wrote %d frames to '%s'", 12, "out.mp4");
    log_verbose("hidden at info");
    log_debug("hidden at info");
    log_warn("odd width %d, padding", 831);
    log_error("cannot read '%s'", "x.png");
    log_tagged(LOG_INFO, "[RAM]", "%s: Process=%s", "start", "1.0 MiB (peak 1.0 MiB)");
    log_set_level(LOG_ERROR);
    log_info("hidden at error");
    log_warn("hidden at error");
    log_tagged(LOG_INFO, "[RAM]", "hidden");
    log_error("still shown");
    log_set_level(LOG_DEBUG);
    log_debug("debug %s", "shown");
    log_set_level(LOG_INFO);
    char *out = capture_end();
    CHECK_STR(out, "[T1234] stitch: wrote 12 frames to 'out.mp4'\n"
                   "[T1234] stitch: odd width 831, padding\n"
                   "[T1234] stitch: cannot read 'x.png'\n"
                   "[T1234] [RAM] start: Process=1.0 MiB (peak 1.0 MiB)\n"
                   "[T1234] stitch: still shown\n"
                   "[T1234] stitch: debug shown\n");
    free(out);
    CHECK(log_get_level() == LOG_INFO);
    /* an overlong line is cut, still one line */
    char big[6000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    capture_begin();
    log_info("%s", big);
    log_tagged(LOG_INFO, "[RAM]", "%s", big);
    out = capture_end();
    char *nl = strchr(out, '\n');
    CHECK(nl && nl - out == 4094 && strncmp(out, "[T1234] stitch: zzz", 19) == 0);
    CHECK(nl && strchr(nl + 1, '\n') && strchr(nl + 1, '\n')[1] == 0);
    free(out);
    /* progress bars only on a terminal: stderr is a file here */
    capture_begin();
    CHECK(!log_progress_ok());
    log_progress("frames", 3, 10);
    log_progress("frames", 10, 10);
    out = capture_end();
    CHECK_STR(out, "");
    free(out);

    TEST("task ids");
    char a[16], b[16];
    log_new_task_id(a, sizeof a);
    log_new_task_id(b, sizeof b);
    CHECK(strlen(a) == 8 && strspn(a, "0123456789abcdef") == 8);
    CHECK(strcmp(a, b) != 0);
    /* re-init without an id keeps the current one (tools call log_init once; helpers may again) */
    CHECK(log_init("stitch", NULL, LOG_INFO, NULL) == 0);
    CHECK_STR(log_task_id(), "T1234");
}

static void test_json(void)
{
    TEST("JSON Lines events");
    char path[700];
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    CHECK(log_init("flow-extract", "J1", LOG_INFO, path) == 0);
    log_event("checkpoint", json_pack("{s:s, s:I}", "label", "start", "rss", (json_int_t)123456789));
    log_event("bare", NULL);
    capture_begin();
    log_warn("a warning with \"quotes\" and a\nnewline");
    log_error("an error");
    log_info("info is not an event");
    char *out = capture_end();
    free(out);
    log_close();
    log_event("after close", NULL); /* no-op */
    int n, bad;
    json_t *ev = read_lines(path, &n, &bad);
    CHECK(n == 4 && bad == 0 && json_array_size(ev) == 4);
    json_t *e0 = json_array_get(ev, 0);
    CHECK_STR(json_string_value(json_object_get(e0, "event")), "checkpoint");
    CHECK_STR(json_string_value(json_object_get(e0, "task_id")), "J1");
    CHECK_STR(json_string_value(json_object_get(e0, "tool")), "flow-extract");
    CHECK_STR(json_string_value(json_object_get(e0, "label")), "start");
    CHECK(json_integer_value(json_object_get(e0, "rss")) == 123456789);
    CHECK(json_integer_value(json_object_get(e0, "pid")) == getpid());
    CHECK(json_is_number(json_object_get(e0, "time")) && json_number_value(json_object_get(e0, "time")) > 1.6e9);
    CHECK_STR(json_string_value(json_object_get(json_array_get(ev, 1), "event")), "bare");
    json_t *e2 = json_array_get(ev, 2), *e3 = json_array_get(ev, 3);
    CHECK_STR(json_string_value(json_object_get(e2, "event")), "warning");
    CHECK_STR(json_string_value(json_object_get(e2, "message")), "a warning with \"quotes\" and a\nnewline");
    CHECK_STR(json_string_value(json_object_get(e3, "event")), "error");
    CHECK_STR(json_string_value(json_object_get(e3, "message")), "an error");
    json_decref(ev);
    /* event times resolve well below a second (two events 50 ms apart) */
    char path2[700];
    snprintf(path2, sizeof path2, "%s/times.jsonl", dir);
    CHECK(log_init("flow-extract", "J1", LOG_INFO, path2) == 0);
    log_event("t0", NULL);
    usleep(50000);
    log_event("t1", NULL);
    log_close();
    ev = read_lines(path2, &n, &bad);
    double dt = json_number_value(json_object_get(json_array_get(ev, 1), "time")) -
                json_number_value(json_object_get(json_array_get(ev, 0), "time"));
    CHECKF(n == 2 && dt > 0.04 && dt < 0.5, "dt = %.6f s", dt);
    json_decref(ev);
    /* append mode: a second init adds to the file */
    CHECK(log_init("flow-extract", "J2", LOG_INFO, path) == 0);
    log_event("again", NULL);
    log_close();
    ev = read_lines(path, &n, &bad);
    CHECK(n == 5 && bad == 0);
    json_decref(ev);
    /* an unopenable log file is an error naming it */
    CHECK(log_init("x", "J3", LOG_INFO, "/nonexistent-dir/log.jsonl") == ISO_ECANTCREAT && strstr(iso_errmsg(), "/nonexistent-dir/log.jsonl"));
}

static void test_concurrent(void)
{
    TEST("concurrent writers: 4 processes x 200 events, every line parses");
    char path[700];
    snprintf(path, sizeof path, "%s/concurrent.jsonl", dir);
    /* a payload of a few KiB, so that lines would tear if a write were split */
    char payload[3000];
    for (size_t i = 0; i < sizeof payload - 1; i++) payload[i] = (char)('a' + i % 26);
    payload[sizeof payload - 1] = 0;
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            char id[16];
            snprintf(id, sizeof id, "child%d", k);
            if (log_init("t", id, LOG_INFO, path)) _exit(2);
            for (int i = 0; i < 200; i++) log_event("tick", json_pack("{s:i, s:s}", "i", i, "payload", payload));
            log_close();
            _exit(0);
        }
    }
    int all_ok = 1;
    for (int k = 0; k < 4; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) all_ok = 0;
    }
    CHECK(all_ok);
    int n, bad;
    json_t *ev = read_lines(path, &n, &bad);
    CHECKF(n == 800 && bad == 0, "%d lines, %d bad", n, bad);
    int per[4] = { 0 }, order_ok = 1, last[4] = { -1, -1, -1, -1 };
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        const char *id = json_string_value(json_object_get(e, "task_id"));
        int k = id && strncmp(id, "child", 5) == 0 ? id[5] - '0' : -1;
        if (k < 0 || k > 3) continue;
        int seq = (int)json_integer_value(json_object_get(e, "i"));
        if (seq != last[k] + 1) order_ok = 0;
        last[k] = seq;
        if (strcmp(json_string_value(json_object_get(e, "payload")), payload) == 0) per[k]++;
    }
    CHECKF(per[0] == 200 && per[1] == 200 && per[2] == 200 && per[3] == 200, "per child %d %d %d %d", per[0], per[1], per[2], per[3]);
    CHECK(order_ok);
    json_decref(ev);
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_lines();
    test_json();
    test_concurrent();
    fs_rm_rf(dir);
    return test_report();
}
