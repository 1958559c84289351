/* log.h — the process-wide logger: levels, the task-id prefix on every line,
 * and JSON Lines events for --log-json.
 * Human lines go to stderr as "[TASK] tool: message"; log_event appends one
 * JSON object per line to the --log-json file (opened in append mode, one
 * write(2) per event so concurrent processes do not interleave lines). */
#ifndef ISOPIPE_LOG_H
#define ISOPIPE_LOG_H
#include <jansson.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_VERBOSE, LOG_DEBUG };

/* tool: program name; task_id: NULL for a fresh id; json_path: NULL for none.
 * Returns 0 or a negative status when the JSON log cannot be opened. */
int log_init(const char *tool, const char *task_id, enum log_level level, const char *json_path);
void log_close(void);
const char *log_tool(void);
const char *log_task_id(void);
enum log_level log_get_level(void);
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)    log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_verbose(...) log_msg(LOG_VERBOSE, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
/* a line with a tag instead of the tool name: "[TASK] [RAM] ..." (checkpoints) */
void log_tagged(enum log_level level, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append {"time","task_id","tool","event":event, ...fields} to the JSON log.
 * Consumes fields (may be NULL). No-op without --log-json. */
void log_event(const char *event, json_t *fields);

/* true when stderr is a terminal and progress bars may be drawn */
int log_progress_ok(void);
/* "\r[TASK] label: done/total" on a terminal, nothing otherwise; done==total ends the line */
void log_progress(const char *label, long done, long total);

/* a fresh random task id (8 hex digits) into buf */
void log_new_task_id(char *buf, size_t n);
#endif
