/* scale.h — resampling for --max-size: an area (box) downscale of grey
 * frames, and a bilinear upscale of a flow field whose vectors are
 * multiplied by the size ratio so they are in pixels of the larger grid. */
#ifndef FLOW_SCALE_H
#define FLOW_SCALE_H

/* src sw x sh -> dst dw x dh (dw <= sw, dh <= sh); each destination pixel
 * is the mean of the source area it covers (fractional edges weighted); 0 or ISO_EINTERNAL */
int scale_area_down(const float *src, int sw, int sh, float *dst, int dw, int dh);
/* planar flow u, v at sw x sh -> interleaved uv at dw x dh, pixel centres aligned */
void scale_flow_up(const float *u, const float *v, int sw, int sh, float *uv, int dw, int dh);
#endif
