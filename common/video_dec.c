/* video_dec.c — video files to RGB frames (see video.h, decoder section). */
#include "video.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

#include "err.h"
#include "fs.h"

struct video_dec {
    AVFormatContext *fc;
    AVCodecContext *cc;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int stream;
    int w, h, fps_num, fps_den;
    int flushing, eof;
    int64_t frames;
    char *path;
};

static const char *av_msg(int err, char *buf, size_t n)
{
    if (av_strerror(err, buf, n) < 0) snprintf(buf, n, "libav error %d", err);
    return buf;
}

void video_dec_free(struct video_dec **dp)
{
    struct video_dec *d = dp ? *dp : NULL;
    if (!d) return;
    sws_freeContext(d->sws);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->cc);
    avformat_close_input(&d->fc);
    free(d->path);
    free(d);
    *dp = NULL;
}

int video_dec_open(struct video_dec **out, const char *path, int threads)
{
    *out = NULL;
    char eb[128];
    int rc = 0, err;
    if (access(path, F_OK) != 0)
        return iso_fail(errno == ENOENT ? ISO_ENOINPUT : ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
    if (access(path, R_OK) != 0) return iso_fail(ISO_EIO, "cannot read '%s': %s", path, strerror(errno));
    { /* libavformat would wait forever on a FIFO with no writer */
        int fd;
        if ((rc = fs_open_input(path, &fd))) return rc;
        close(fd);
    }
    struct video_dec *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    /* libav prints its own complaints on stderr; errors here become one line of ours */
    av_log_set_level(AV_LOG_QUIET);
    if ((err = avformat_open_input(&d->fc, path, NULL, NULL)) < 0) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': not a video file (%s)", path, av_msg(err, eb, sizeof eb));
        goto done;
    }
    if ((err = avformat_find_stream_info(d->fc, NULL)) < 0) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': %s", path, av_msg(err, eb, sizeof eb));
        goto done;
    }
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': %s", path,
                      d->stream == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video stream" : "no video stream");
        goto done;
    }
    AVStream *st = d->fc->streams[d->stream];
    if (!(d->cc = avcodec_alloc_context3(codec)) || !(d->pkt = av_packet_alloc()) || !(d->frame = av_frame_alloc())) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    if ((err = avcodec_parameters_to_context(d->cc, st->codecpar)) < 0) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': %s", path, av_msg(err, eb, sizeof eb));
        goto done;
    }
    d->cc->thread_count = threads > 0 ? threads : 0;
    if ((err = avcodec_open2(d->cc, codec, NULL)) < 0) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': cannot open the %s decoder (%s)", path, codec->name,
                      av_msg(err, eb, sizeof eb));
        goto done;
    }
    d->w = d->cc->width;
    d->h = d->cc->height;
    if (d->w <= 0 || d->h <= 0 || d->w > (1 << 15) || d->h > (1 << 15)) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': bad frame size %dx%d", path, d->w, d->h);
        goto done;
    }
    AVRational fr = av_guess_frame_rate(d->fc, st, NULL);
    d->fps_num = fr.num > 0 && fr.den > 0 ? fr.num : 0;
    d->fps_den = fr.num > 0 && fr.den > 0 ? fr.den : 1;
done:
    if (rc) video_dec_free(&d);
    *out = d;
    return rc;
}

void video_dec_info(const struct video_dec *d, int *w, int *h, int *fps_num, int *fps_den)
{
    if (w) *w = d->w;
    if (h) *h = d->h;
    if (fps_num) *fps_num = d->fps_num;
    if (fps_den) *fps_den = d->fps_den;
}

int64_t video_dec_frames(const struct video_dec *d) { return d->frames; }

static int convert(struct video_dec *d, uint8_t *rgb, ptrdiff_t stride)
{
    AVFrame *f = d->frame;
    if (f->width != d->w || f->height != d->h)
        return iso_fail(ISO_EDATA, "cannot read '%s': frame %lld is %dx%d, the stream started at %dx%d", d->path,
                        (long long)d->frames, f->width, f->height, d->w, d->h);
    d->sws = sws_getCachedContext(d->sws, f->width, f->height, (enum AVPixelFormat)f->format, d->w, d->h,
                                  AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL,
                                  NULL);
    if (!d->sws) return iso_fail(ISO_EDATA, "cannot read '%s': cannot convert pixel format %d", d->path, f->format);
    uint8_t *dst[4] = { rgb, NULL, NULL, NULL };
    int dst_stride[4] = { (int)stride, 0, 0, 0 };
    sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    d->frames++;
    return 1;
}

int video_dec_read_rgb(struct video_dec *d, uint8_t *rgb, ptrdiff_t stride)
{
    char eb[128];
    int err;
    if (stride < 3 * (ptrdiff_t)d->w) return iso_fail(ISO_EINTERNAL, "video_dec_read_rgb: stride too small");
    for (;;) {
        if (d->eof) return 0;
        err = avcodec_receive_frame(d->cc, d->frame);
        if (err == 0) {
            int rc = convert(d, rgb, stride);
            av_frame_unref(d->frame);
            return rc;
        }
        if (err == AVERROR_EOF) {
            d->eof = 1;
            return 0;
        }
        if (err != AVERROR(EAGAIN))
            return iso_fail(ISO_EDATA, "cannot read '%s': corrupt video at frame %lld (%s)", d->path,
                            (long long)d->frames, av_msg(err, eb, sizeof eb));
        if (d->flushing) {
            d->eof = 1;
            return 0;
        }
        /* the decoder wants input: the next packet of our stream, or a flush at the end */
        for (;;) {
            err = av_read_frame(d->fc, d->pkt);
            if (err == AVERROR_EOF) {
                d->flushing = 1;
                avcodec_send_packet(d->cc, NULL);
                break;
            }
            if (err < 0)
                return iso_fail(err == AVERROR(EIO) ? ISO_EIO : ISO_EDATA, "cannot read '%s': %s", d->path,
                                av_msg(err, eb, sizeof eb));
            if (d->pkt->stream_index != d->stream) {
                av_packet_unref(d->pkt);
                continue;
            }
            err = avcodec_send_packet(d->cc, d->pkt);
            av_packet_unref(d->pkt);
            if (err < 0 && err != AVERROR(EAGAIN))
                return iso_fail(ISO_EDATA, "cannot read '%s': corrupt video at frame %lld (%s)", d->path,
                                (long long)d->frames, av_msg(err, eb, sizeof eb));
            break;
        }
    }
}
