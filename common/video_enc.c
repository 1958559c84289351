/* video_enc.c — RGB frames to H.264/MP4 (see video.h). */
#include "video.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "err.h"
#include "log.h"

struct video_enc {
    AVFormatContext *oc;
    AVCodecContext *cc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    int src_w, src_h;
    int64_t next_pts;
    int header_written, finished;
    char *path;             /* for messages: params.name or the path */
    struct video_enc_info info;
};

void video_enc_default_params(struct video_enc_params *p)
{
    memset(p, 0, sizeof *p);
    p->fps_num = 24;
    p->fps_den = 1;
    p->crf = 18;
    p->preset = "medium";
}

static const char *averr(int e, char *buf, size_t n)
{
    av_strerror(e, buf, n);
    return buf;
}

/* ITU-R BT.601 luma/chroma weights (Kr = 0.299, Kb = 0.114) scaled to the
 * limited range (219 and 224 levels over 255) and to 2^16:
 *   Y  = 16  + 219/255 * ( 0.299    R + 0.587    G + 0.114    B)
 *   Cb = 128 + 224/255 * (-0.168736 R - 0.331264 G + 0.5      B)
 *   Cr = 128 + 224/255 * ( 0.5      R - 0.418688 G - 0.081312 B)
 * Each row of chroma weights is rounded so that it sums to exactly 0, and
 * the luma weights so that white maps to exactly 235. */
enum {
    CY_R = 16829, CY_G = 33039, CY_B = 6416,
    CB_R = -9714, CB_G = -19070, CB_B = 28784,
    CR_R = 28784, CR_G = -24103, CR_B = -4681,
};

static inline uint8_t luma(int r, int g, int b)
{
    return (uint8_t)((CY_R * r + CY_G * g + CY_B * b + (16 << 16) + (1 << 15)) >> 16);
}

/* One chroma row from two source rows r0, r1 (r1 may equal r0 at an odd
 * bottom edge): luma for both rows and the 2x2-mean chroma. Written as
 * plain loops over independent pixels so the compiler can vectorise them. */
static void convert_rows(const uint8_t *restrict r0, const uint8_t *restrict r1, int w, uint8_t *restrict y0,
                         uint8_t *restrict y1, uint8_t *restrict u, uint8_t *restrict v)
{
    int pairs = w / 2;
    for (int x = 0; x < w; x++) {
        y0[x] = luma(r0[3 * x], r0[3 * x + 1], r0[3 * x + 2]);
        y1[x] = luma(r1[3 * x], r1[3 * x + 1], r1[3 * x + 2]);
    }
    for (int c = 0; c < pairs; c++) {
        int k = 6 * c;
        int sr = r0[k] + r0[k + 3] + r1[k] + r1[k + 3];
        int sg = r0[k + 1] + r0[k + 4] + r1[k + 1] + r1[k + 4];
        int sb = r0[k + 2] + r0[k + 5] + r1[k + 2] + r1[k + 5];
        /* the sums are 4x the mean, hence 2 more bits of shift */
        u[c] = (uint8_t)((CB_R * sr + CB_G * sg + CB_B * sb + (128 << 18) + (1 << 17)) >> 18);
        v[c] = (uint8_t)((CR_R * sr + CR_G * sg + CR_B * sb + (128 << 18) + (1 << 17)) >> 18);
    }
    if (w & 1) {
        /* odd width: the padded column repeats the last pixel */
        int k = 3 * (w - 1);
        y0[w] = y0[w - 1];
        y1[w] = y1[w - 1];
        int sr = 2 * (r0[k] + r1[k]), sg = 2 * (r0[k + 1] + r1[k + 1]), sb = 2 * (r0[k + 2] + r1[k + 2]);
        u[pairs] = (uint8_t)((CB_R * sr + CB_G * sg + CB_B * sb + (128 << 18) + (1 << 17)) >> 18);
        v[pairs] = (uint8_t)((CR_R * sr + CR_G * sg + CR_B * sb + (128 << 18) + (1 << 17)) >> 18);
    }
}

void video_rgb_to_yuv420(const uint8_t *src, ptrdiff_t src_stride, int w, int h, uint8_t *y,
                         ptrdiff_t y_stride, uint8_t *u, ptrdiff_t u_stride, uint8_t *v, ptrdiff_t v_stride)
{
    int rows = (h + 1) / 2;
    for (int c = 0; c < rows; c++) {
        int ya = 2 * c, yb = 2 * c + 1 < h ? 2 * c + 1 : 2 * c; /* odd height: repeat the last row */
        convert_rows(src + ya * src_stride, src + yb * src_stride, w, y + (ptrdiff_t)(2 * c) * y_stride,
                     y + (ptrdiff_t)(2 * c + 1) * y_stride, u + c * u_stride, v + c * v_stride);
    }
}

static int preset_ok(const char *p)
{
    static const char *const names[] = { "ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                         "slow", "slower", "veryslow", "placebo", NULL };
    for (int i = 0; names[i]; i++)
        if (!strcmp(p, names[i])) return 1;
    return 0;
}

/* Sends frame (NULL to drain) and writes every packet that comes out. */
static int encode(struct video_enc *e, AVFrame *frame)
{
    char eb[128];
    int r = avcodec_send_frame(e->cc, frame);
    if (r < 0) return iso_fail(ISO_EINTERNAL, "cannot encode a frame for '%s': %s", e->path, averr(r, eb, sizeof eb));
    for (;;) {
        r = avcodec_receive_packet(e->cc, e->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 0;
        if (r < 0) return iso_fail(ISO_EINTERNAL, "cannot encode a frame for '%s': %s", e->path, averr(r, eb, sizeof eb));
        /* every frame lasts one tick of 1/fps; libx264 leaves the duration
         * unset, and without it the MP4's last sample (and so the file's
         * duration) would be one frame short */
        if (e->pkt->duration <= 0) e->pkt->duration = 1;
        av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
        e->pkt->stream_index = e->st->index;
        r = av_interleaved_write_frame(e->oc, e->pkt); /* takes the packet's reference */
        if (r < 0) return iso_fail(ISO_EIO, "cannot write '%s': %s", e->path, averr(r, eb, sizeof eb));
    }
}

int video_enc_check_codec(const char *name)
{
    if (!name || !*name) return iso_fail(ISO_EUSAGE, "--codec: empty encoder name");
    if (!strcmp(name, "libx264")) return 0;
    const AVCodec *c = avcodec_find_encoder_by_name(name);
    if (!c || c->type != AVMEDIA_TYPE_VIDEO)
        return iso_fail(ISO_EUSAGE, "--codec: '%s' is not a video encoder of the linked libavcodec (try libx264, "
                        "mpeg4)", name);
    return 0;
}

int video_enc_open(struct video_enc **out, const char *path, const struct video_enc_params *p)
{
    char eb[128];
    int rc = 0, r;
    AVDictionary *opts = NULL;
    *out = NULL;
    const char *nm = p->name ? p->name : path; /* for messages */
    if (p->width < 1 || p->height < 1 || p->width > 16384 || p->height > 16384)
        return iso_fail(ISO_EUSAGE, "cannot encode '%s': bad frame size %dx%d", nm, p->width, p->height);
    if (p->fps_num < 1 || p->fps_den < 1)
        return iso_fail(ISO_EUSAGE, "cannot encode '%s': bad frame rate %d/%d", nm, p->fps_num, p->fps_den);
    if (p->crf < 0 || p->crf > 51) return iso_fail(ISO_EUSAGE, "--crf: %d is out of range [0, 51]", p->crf);
    if (p->preset && !preset_ok(p->preset))
        return iso_fail(ISO_EUSAGE, "--preset: '%s' is not a libx264 preset (ultrafast .. placebo)", p->preset);

    /* libav's own log lines (x264's banner and statistics) only with -vv:
     * errors still reach the caller through the returned status */
    enum log_level lv = log_get_level();
    av_log_set_level(lv >= LOG_DEBUG ? AV_LOG_INFO : lv >= LOG_VERBOSE ? AV_LOG_WARNING : AV_LOG_ERROR);

    struct video_enc *e = calloc(1, sizeof *e);
    if (!e) return iso_fail(ISO_EINTERNAL, "out of memory");
    e->path = strdup(p->name ? p->name : path);
    e->src_w = p->width;
    e->src_h = p->height;
    e->info.enc_width = (p->width + 1) & ~1;
    e->info.enc_height = (p->height + 1) & ~1;
    e->info.padded = e->info.enc_width != p->width || e->info.enc_height != p->height;
    e->info.pix_fmt = "yuv420p";

    const char *want = p->codec ? p->codec : "libx264";
    if ((rc = video_enc_check_codec(want))) goto done;
    const AVCodec *codec = NULL;
    const char *hide = getenv("ISOPIPE_VIDEO_NO_X264");
    int x264_hidden = hide && *hide && strcmp(hide, "0") != 0;
    if (!(x264_hidden && !strcmp(want, "libx264"))) codec = avcodec_find_encoder_by_name(want);
    if (!codec && !strcmp(want, "libx264")) {
        codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
        e->info.fell_back = codec != NULL;
    }
    if (!codec) {
        rc = iso_fail(ISO_EUNAVAIL, "cannot encode '%s': encoder '%s' is not in the linked libavcodec", nm, want);
        goto done;
    }
    e->info.codec = codec->name;

    r = avformat_alloc_output_context2(&e->oc, NULL, "mp4", path);
    if (r < 0 || !e->oc) {
        rc = iso_fail(ISO_EINTERNAL, "cannot set up the MP4 muxer: %s", averr(r, eb, sizeof eb));
        goto done;
    }
    e->st = avformat_new_stream(e->oc, NULL);
    e->cc = avcodec_alloc_context3(codec);
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->st || !e->cc || !e->frame || !e->pkt || !e->path) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    AVCodecContext *cc = e->cc;
    cc->width = e->info.enc_width;
    cc->height = e->info.enc_height;
    cc->pix_fmt = AV_PIX_FMT_YUV420P;
    cc->time_base = (AVRational){ p->fps_den, p->fps_num };
    cc->framerate = (AVRational){ p->fps_num, p->fps_den };
    cc->sample_aspect_ratio = (AVRational){ 1, 1 };
    cc->thread_count = p->threads;
    /* tag what video_rgb_to_yuv420 produces, so players convert back with
     * the same matrix (BT.601) and range (limited); the RGB is sRGB */
    cc->color_range = AVCOL_RANGE_MPEG;
    cc->colorspace = AVCOL_SPC_SMPTE170M;
    cc->color_primaries = AVCOL_PRI_BT709;
    cc->color_trc = AVCOL_TRC_IEC61966_2_1;
    cc->chroma_sample_location = AVCHROMA_LOC_CENTER; /* 2x2 means sit between the samples */
    if (e->oc->oformat->flags & AVFMT_GLOBALHEADER) cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (!strcmp(codec->name, "libx264")) {
        char crf[16];
        snprintf(crf, sizeof crf, "%d", p->crf);
        av_dict_set(&opts, "crf", crf, 0);
        if (p->preset) av_dict_set(&opts, "preset", p->preset, 0);
    } else {
        /* no CRF outside x264: a constant quantiser of similar quality,
         * crf 0..51 mapped linearly onto mpeg4's qscale 1..31 */
        cc->flags |= AV_CODEC_FLAG_QSCALE;
        cc->global_quality = FF_QP2LAMBDA * (1 + p->crf * 30 / 51);
    }
    r = avcodec_open2(cc, codec, &opts);
    if (r < 0) {
        rc = iso_fail(ISO_EINTERNAL, "cannot open encoder '%s': %s", codec->name, averr(r, eb, sizeof eb));
        goto done;
    }
    r = avcodec_parameters_from_context(e->st->codecpar, cc);
    if (r < 0) {
        rc = iso_fail(ISO_EINTERNAL, "cannot set stream parameters: %s", averr(r, eb, sizeof eb));
        goto done;
    }
    e->st->time_base = cc->time_base;
    e->st->avg_frame_rate = cc->framerate;
    e->frame->format = cc->pix_fmt;
    e->frame->width = cc->width;
    e->frame->height = cc->height;
    r = av_frame_get_buffer(e->frame, 0);
    if (r < 0) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory for a frame: %s", averr(r, eb, sizeof eb));
        goto done;
    }
    r = avio_open(&e->oc->pb, path, AVIO_FLAG_WRITE);
    if (r < 0) {
        rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", nm, averr(r, eb, sizeof eb));
        goto done;
    }
    {
        AVDictionary *mux = NULL;
        /* a pipe cannot seek back to write the index at the end: put an empty
         * moov first and the samples in self-contained fragments */
        if (p->fragmented) av_dict_set(&mux, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
        r = avformat_write_header(e->oc, &mux);
        av_dict_free(&mux);
    }
    if (r < 0) {
        rc = iso_fail(ISO_EIO, "cannot write '%s': %s", nm, averr(r, eb, sizeof eb));
        goto done;
    }
    e->header_written = 1;
done:
    av_dict_free(&opts);
    if (rc) video_enc_free(&e);
    *out = e;
    return rc;
}

void video_enc_get_info(const struct video_enc *e, struct video_enc_info *info)
{
    *info = e->info;
}

int64_t video_enc_frames(const struct video_enc *e)
{
    return e->next_pts;
}

int video_enc_write_rgb(struct video_enc *e, const uint8_t *rgb, ptrdiff_t stride)
{
    char eb[128];
    if (e->finished) return iso_fail(ISO_EINTERNAL, "video_enc_write_rgb after finish");
    /* the encoder may still hold a reference to the previous buffer */
    int r = av_frame_make_writable(e->frame);
    if (r < 0) return iso_fail(ISO_EINTERNAL, "out of memory for a frame: %s", averr(r, eb, sizeof eb));
    AVFrame *f = e->frame;
    video_rgb_to_yuv420(rgb, stride, e->src_w, e->src_h, f->data[0], f->linesize[0], f->data[1], f->linesize[1],
                        f->data[2], f->linesize[2]);
    f->pts = e->next_pts++;
    return encode(e, f);
}

int video_enc_finish(struct video_enc *e)
{
    char eb[128];
    if (e->finished) return 0;
    e->finished = 1;
    int rc = encode(e, NULL);
    if (rc) return rc;
    int r = av_write_trailer(e->oc);
    if (r < 0) return iso_fail(ISO_EIO, "cannot write '%s': %s", e->path, averr(r, eb, sizeof eb));
    r = avio_closep(&e->oc->pb);
    if (r < 0) return iso_fail(ISO_EIO, "cannot write '%s': %s", e->path, averr(r, eb, sizeof eb));
    return 0;
}

void video_enc_free(struct video_enc **ep)
{
    struct video_enc *e = ep ? *ep : NULL;
    if (!e) return;
    if (e->oc) {
        if (e->oc->pb) avio_closep(&e->oc->pb);
        avformat_free_context(e->oc);
    }
    avcodec_free_context(&e->cc);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    free(e->path);
    free(e);
    *ep = NULL;
}
