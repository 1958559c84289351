/* jsonio.h — jansson helpers: the common header of every isopipe JSON file,
 * atomic writes, loading with a clean error, and typed getters.
 * Functions named *_new return a new reference; setters consume values
 * (jansson's *_set_new convention). */
#ifndef ISOPIPE_JSONIO_H
#define ISOPIPE_JSONIO_H
#include <jansson.h>
#include <stdint.h>

/* {"tool": log_tool(), "version": ISOPIPE_VERSION, "task_id": log_task_id()} */
json_t *jsonio_header_new(void);
/* pretty JSON, temp file + fsync + rename; 0 or a status */
int jsonio_write_atomic(const char *path, const json_t *root);
/* load and parse; ISO_ENOINPUT when missing, ISO_EDATA when malformed (message has line:col) */
int jsonio_load(const char *path, json_t **out);

const char *jsonio_str(const json_t *obj, const char *key, const char *def);
int64_t jsonio_int(const json_t *obj, const char *key, int64_t def);
double jsonio_num(const json_t *obj, const char *key, double def);
/* obj[key] = relative path from json_path's directory to target (consumes nothing) */
void jsonio_set_path(json_t *obj, const char *key, const char *json_path, const char *target);
/* obj["activations"] = {"reserved", "high_water", "peak", "beyond_reserve"}
 * (bytes, common/nn_heap.h) when the nn context reserved or grew anything:
 * what a GPU mode's activations took, on the card or (pretend device) in
 * the CPU's shadow of it */
struct nn_act_stats;
void jsonio_set_act_stats(json_t *obj, const struct nn_act_stats *st);
#endif
