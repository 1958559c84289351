/* st_tool — safetensors helpers for the CLI tests (not installed).
 *
 *   st_tool diff A NAME_A B NAME_B TOL
 *       max |a - b| / max |b| over two float tensors of the same shape; prints
 *       it; exit 0 when <= TOL, 1 when larger (or the shapes differ), 2 on error
 *   st_tool edit IN OUT OP...
 *       copy the f32/f16/bf16 tensors of IN to OUT (as f32), applying
 *       drop NAME | shrink NAME (first dimension one less) | add NAME (a [4] zero tensor)
 *       | rename OLD NEW */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "st_write.h"
#include "weights.h"

static float *as_f32(const struct wt_tensor *t)
{
    float *d = malloc((t->nelem ? t->nelem : 1) * sizeof(float));
    if (d && weights_to_f32(t, 0, t->nelem, d)) { free(d); return NULL; }
    return d;
}

static int diff(char **av)
{
    struct weights *a = NULL, *b = NULL;
    if (weights_open(av[0], &a) || weights_open(av[2], &b)) { fprintf(stderr, "st_tool: %s\n", iso_errmsg()); return 2; }
    const struct wt_tensor *ta = weights_find(a, av[1]), *tb = weights_find(b, av[3]);
    if (!ta || !tb) { fprintf(stderr, "st_tool: tensor missing\n"); return 2; }
    int same = ta->n_dims == tb->n_dims;
    for (int i = 0; same && i < ta->n_dims; i++) same = ta->shape[i] == tb->shape[i];
    if (!same) { printf("shapes differ\n"); return 1; }
    float *x = as_f32(ta), *y = as_f32(tb);
    if (!x || !y) return 2;
    double md = 0, mb = 0;
    for (uint64_t i = 0; i < ta->nelem; i++) {
        double d = fabs((double)x[i] - y[i]);
        if (!(d <= md)) md = d;
        if (fabs(y[i]) > mb) mb = fabs(y[i]);
    }
    double rel = mb > 0 ? md / mb : md;
    printf("max rel err %.3g\n", rel);
    free(x);
    free(y);
    weights_close(&a);
    weights_close(&b);
    return rel <= atof(av[4]) ? 0 : 1;
}

static int edit(int ac, char **av)
{
    struct weights *w = NULL;
    if (weights_open(av[0], &w)) { fprintf(stderr, "st_tool: %s\n", iso_errmsg()); return 2; }
    size_t n = weights_count(w);
    struct st_out *o = calloc(n + 8, sizeof *o);
    float **bufs = calloc(n + 8, sizeof *bufs);
    char **names = calloc(n + 8, sizeof *names);
    size_t k = 0;
    static const float zeros[4];
    for (size_t i = 0; i < n; i++) {
        const struct wt_tensor *t = weights_at(w, i);
        const char *name = t->name;
        int drop = 0, shrink = 0;
        for (int j = 2; j + 1 < ac; j += 2) {
            if (!strcmp(av[j], "drop") && !strcmp(av[j + 1], name)) drop = 1;
            if (!strcmp(av[j], "shrink") && !strcmp(av[j + 1], name)) shrink = 1;
            if (!strcmp(av[j], "rename") && j + 2 < ac && !strcmp(av[j + 1], name)) name = av[j + 2];
            if (!strcmp(av[j], "rename")) j++;
        }
        if (drop) continue;
        if (!(bufs[k] = as_f32(t))) { fprintf(stderr, "st_tool: %s\n", iso_errmsg()); return 2; }
        names[k] = strdup(name);
        o[k].name = names[k];
        o[k].dtype = ST_F32;
        o[k].n_dims = t->n_dims;
        for (int d = 0; d < t->n_dims; d++) o[k].shape[d] = (uint64_t)t->shape[d];
        if (shrink && t->n_dims > 0 && t->shape[0] > 1) o[k].shape[0]--;
        o[k].data = bufs[k];
        k++;
    }
    for (int j = 2; j + 1 < ac; j += 2) {
        if (!strcmp(av[j], "rename")) { j++; continue; }
        if (strcmp(av[j], "add")) continue;
        o[k].name = av[j + 1];
        o[k].dtype = ST_F32;
        o[k].n_dims = 1;
        o[k].shape[0] = 4;
        o[k].data = zeros;
        k++;
    }
    int rc = st_write(av[1], o, k, NULL);
    if (rc) fprintf(stderr, "st_tool: %s\n", iso_errmsg());
    for (size_t i = 0; i < k; i++) { free(bufs[i]); free(names[i]); }
    free(bufs);
    free(names);
    free(o);
    weights_close(&w);
    return rc ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "diff")) return diff(argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "edit")) return edit(argc - 2, argv + 2);
    fprintf(stderr, "usage: st_tool diff A NAME_A B NAME_B TOL | st_tool edit IN OUT OP...\n");
    return 2;
}
