/*
 * ds_rdpclip.c - the clipboard of one RDP session (see ds_rdpclip.h).
 */
#include "ds_rdpclip.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/server/cliprdr.h>
#include <winpr/synch.h>

#include "ds_session.h"

#define DS_RDPCLIP_CF_TEXT        1
#define DS_RDPCLIP_CF_UNICODETEXT 13

struct ds_rdpclip {
    HANDLE vcm;
    freerdp_peer *peer;
    struct ds_rdpclip_hooks hooks;
    CliprdrServerContext *ctx;
    int fd;

    int ready;           /* the client's caps came */
    char *guest;         /* the guest's text as seen or set last (NULL: none) */
    int getting;         /* a GET is in flight */
    int client_waits;    /* the client asked for the data: answer the GET */
    UINT32 asked_format; /* the client's format we asked for */
    long long next_poll_ms;
};

/* ------------------------------------------------------------------------
 * Text: the client's is UTF-16LE (CF_UNICODETEXT) or 8-bit (CF_TEXT) with
 * CRLF line ends and a NUL at the end; the guest's UTF-8 with LF. */

static size_t ds_rdpclip_put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The client's text as UTF-8 with LF line ends, up to its NUL and at most
 * DS_RDPCLIP_MAX bytes (cut at a character). unicode: UTF-16LE, else
 * 8-bit (taken as Latin-1). NULL when out of memory. */
static char *ds_rdpclip_from_client(const BYTE *data, size_t len, int unicode)
{
    char *out = malloc(DS_RDPCLIP_MAX + 1);
    size_t n = 0, i = 0;

    if (!out)
        return NULL;
    while (i < len) {
        uint32_t cp;
        char enc[4];
        size_t k;

        if (unicode) {
            if (i + 1 >= len)
                break;
            cp = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8;
            i += 2;
            if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < len) {
                uint32_t lo = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8;

                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 2;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd; /* a lone surrogate */
        } else {
            cp = data[i++];
        }
        if (cp == 0)
            break;
        if (cp == '\r')
            continue; /* CRLF -> LF (a lone CR goes too) */
        k = ds_rdpclip_put_utf8(enc, cp);
        if (n + k > DS_RDPCLIP_MAX)
            break;
        memcpy(out + n, enc, k);
        n += k;
    }
    out[n] = '\0';
    return out;
}

/* One code point of UTF-8 at *p (advanced); invalid bytes are U+FFFD. */
static uint32_t ds_rdpclip_next_cp(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;
    int more, i;

    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0) {
        cp = s[0] & 0x1f;
        more = 1;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = s[0] & 0x0f;
        more = 2;
    } else if ((s[0] & 0xf8) == 0xf0) {
        cp = s[0] & 0x07;
        more = 3;
    } else {
        *p = s + 1;
        return 0xfffd;
    }
    for (i = 1; i <= more; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *p = s + i;
            return 0xfffd;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *p = s + more + 1;
    return cp > 0x10ffff ? 0xfffd : cp;
}

/* The guest's text as the client wants it: UTF-16LE with CRLF and a NUL.
 * Returns the buffer (caller frees) with its size in *len, or NULL. */
static BYTE *ds_rdpclip_to_client(const char *text, UINT32 *len)
{
    const unsigned char *p = (const unsigned char *)text;
    /* at most: every byte an LF (-> CR LF) in UTF-16, plus the NUL */
    BYTE *out = malloc((strlen(text) * 2 + 1) * 2);
    size_t n = 0;

    if (!out)
        return NULL;
    while (*p) {
        uint32_t cp = ds_rdpclip_next_cp(&p);
        uint16_t u[2];
        int k = 1, i;

        if (cp == '\n') {
            out[n++] = '\r';
            out[n++] = 0;
        }
        if (cp >= 0x10000) {
            u[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
            u[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
            k = 2;
        } else {
            u[0] = (uint16_t)cp;
        }
        for (i = 0; i < k; i++) {
            out[n++] = (BYTE)(u[i] & 0xff);
            out[n++] = (BYTE)(u[i] >> 8);
        }
    }
    out[n++] = 0;
    out[n++] = 0;
    *len = (UINT32)n;
    return out;
}

/* ------------------------------------------------------------------------
 * The client's messages (on the session's thread: ds_rdpclip_check()) */

static UINT ds_rdpclip_on_caps(CliprdrServerContext *ctx,
                               const CLIPRDR_CAPABILITIES *caps)
{
    struct ds_rdpclip *c = ctx->custom;

    (void)caps;
    c->ready = 1;
    c->next_poll_ms = 0; /* offer the guest's clipboard now */
    return CHANNEL_RC_OK;
}

/* The client has new clipboard content: take its text at once (the guest
 * cannot ask later, when someone pastes there). */
static UINT ds_rdpclip_on_format_list(CliprdrServerContext *ctx,
                                      const CLIPRDR_FORMAT_LIST *list)
{
    struct ds_rdpclip *c = ctx->custom;
    CLIPRDR_FORMAT_LIST_RESPONSE ok = {.msgType = CB_FORMAT_LIST_RESPONSE,
                                       .msgFlags = CB_RESPONSE_OK};
    CLIPRDR_FORMAT_DATA_REQUEST req = {.msgType = CB_FORMAT_DATA_REQUEST,
                                       .dataLen = 4};
    UINT32 i, want = 0;

    for (i = 0; i < list->numFormats; i++) {
        if (list->formats[i].formatId == DS_RDPCLIP_CF_UNICODETEXT)
            want = DS_RDPCLIP_CF_UNICODETEXT;
        else if (list->formats[i].formatId == DS_RDPCLIP_CF_TEXT && !want)
            want = DS_RDPCLIP_CF_TEXT;
    }
    if (ctx->ServerFormatListResponse(ctx, &ok) != CHANNEL_RC_OK)
        return ERROR_INTERNAL_ERROR;
    if (!want)
        return CHANNEL_RC_OK; /* no text: images, files */
    c->asked_format = want;
    req.requestedFormatId = want;
    return ctx->ServerFormatDataRequest(ctx, &req);
}

static UINT ds_rdpclip_on_data(CliprdrServerContext *ctx,
                               const CLIPRDR_FORMAT_DATA_RESPONSE *resp)
{
    struct ds_rdpclip *c = ctx->custom;
    char *text;

    if (!(resp->msgFlags & CB_RESPONSE_OK) || !resp->requestedFormatData ||
        !c->asked_format)
        return CHANNEL_RC_OK;
    text = ds_rdpclip_from_client(resp->requestedFormatData, resp->dataLen,
                                  c->asked_format == DS_RDPCLIP_CF_UNICODETEXT);
    c->asked_format = 0;
    if (!text)
        return CHANNEL_RC_NO_MEMORY;
    if (c->hooks.ask(c->hooks.arg, DS_RDPCLIP_SET, text) == 0) {
        free(c->guest); /* the guest has it now: do not offer it back */
        c->guest = text;
    } else {
        free(text);
    }
    return CHANNEL_RC_OK;
}

/* Sends the client the guest's text (or a failure) it asked for. */
static void ds_rdpclip_send_data(struct ds_rdpclip *c, const char *text)
{
    CLIPRDR_FORMAT_DATA_RESPONSE resp = {.msgType = CB_FORMAT_DATA_RESPONSE,
                                         .msgFlags = CB_RESPONSE_FAIL};
    BYTE *data = text ? ds_rdpclip_to_client(text, &resp.dataLen) : NULL;

    c->client_waits = 0;
    if (data) {
        resp.msgFlags = CB_RESPONSE_OK;
        resp.requestedFormatData = data;
    }
    c->ctx->ServerFormatDataResponse(c->ctx, &resp);
    free(data);
}

static void ds_rdpclip_get(struct ds_rdpclip *c)
{
    if (c->getting)
        return;
    if (c->hooks.ask(c->hooks.arg, DS_RDPCLIP_GET, NULL) == 0)
        c->getting = 1;
    else if (c->client_waits)
        ds_rdpclip_send_data(c, NULL);
}

/* The client pastes what the guest offered: read the guest now. */
static UINT ds_rdpclip_on_request(CliprdrServerContext *ctx,
                                  const CLIPRDR_FORMAT_DATA_REQUEST *req)
{
    struct ds_rdpclip *c = ctx->custom;

    c->client_waits = 1;
    if (req->requestedFormatId != DS_RDPCLIP_CF_UNICODETEXT)
        ds_rdpclip_send_data(c, NULL); /* only text was offered */
    else
        ds_rdpclip_get(c);
    return CHANNEL_RC_OK;
}

static UINT ds_rdpclip_on_list_response(CliprdrServerContext *ctx,
                                        const CLIPRDR_FORMAT_LIST_RESPONSE *r)
{
    (void)ctx;
    (void)r;
    return CHANNEL_RC_OK;
}

/* ------------------------------------------------------------------------
 * The guest's side */

/* The guest has new text: offer it to the client. */
static void ds_rdpclip_offer(struct ds_rdpclip *c)
{
    CLIPRDR_FORMAT fmt = {.formatId = DS_RDPCLIP_CF_UNICODETEXT};
    CLIPRDR_FORMAT_LIST list = {
        .msgType = CB_FORMAT_LIST, .numFormats = 1, .formats = &fmt};

    c->ctx->ServerFormatList(c->ctx, &list);
}

void ds_rdpclip_answer(struct ds_rdpclip *c, enum ds_rdpclip_req req,
                       const char *text, const char *error, long long now_ms)
{
    if (!c->ctx)
        return;
    if (req == DS_RDPCLIP_SET) {
        if (error)
            ds_session_log("clipboard to the desktop: %s", error);
        return;
    }
    c->getting = 0;
    c->next_poll_ms = now_ms + (error && strstr(error, "agent is not")
                                    ? DS_RDPCLIP_NO_AGENT_MS
                                    : DS_RDPCLIP_POLL_MS);
    if (c->client_waits)
        ds_rdpclip_send_data(c, error ? NULL : text);
    if (error || !text)
        return;
    if (text[0] && (!c->guest || strcmp(c->guest, text) != 0)) {
        char *copy = strdup(text);

        if (!copy)
            return;
        free(c->guest);
        c->guest = copy;
        ds_rdpclip_offer(c);
    }
}

/* ------------------------------------------------------------------------
 * Life */

int ds_rdpclip_new(struct ds_rdpclip **out, HANDLE vcm, freerdp_peer *peer,
                   const struct ds_rdpclip_hooks *hooks)
{
    struct ds_rdpclip *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->vcm = vcm;
    c->peer = peer;
    c->hooks = *hooks;
    c->fd = -1;
    *out = c;
    return 0;
}

void ds_rdpclip_free(struct ds_rdpclip *c)
{
    if (!c)
        return;
    if (c->ctx) {
        c->ctx->Close(c->ctx);
        cliprdr_server_context_free(c->ctx);
    }
    free(c->guest);
    free(c);
}

int ds_rdpclip_start(struct ds_rdpclip *c)
{
    CLIPRDR_GENERAL_CAPABILITY_SET general = {
        .capabilitySetType = CB_CAPSTYPE_GENERAL,
        .capabilitySetLength = CB_CAPSTYPE_GENERAL_LEN,
        .version = CB_CAPS_VERSION_2,
        .generalFlags = CB_USE_LONG_FORMAT_NAMES};
    CLIPRDR_CAPABILITIES caps = {.msgType = CB_CLIP_CAPS,
                                 .dataLen = 4 + CB_CAPSTYPE_GENERAL_LEN,
                                 .cCapabilitiesSets = 1,
                                 .capabilitySets =
                                     (CLIPRDR_CAPABILITY_SET *)&general};
    CLIPRDR_MONITOR_READY ready = {.msgType = CB_MONITOR_READY};
    CliprdrServerContext *ctx;
    HANDLE ev;

    if (c->ctx || !WTSVirtualChannelManagerIsChannelJoined(c->vcm, "cliprdr"))
        return 0;
    ctx = cliprdr_server_context_new(c->vcm);
    if (!ctx)
        return -EIO;
    ctx->custom = c;
    ctx->rdpcontext = c->peer->context;
    ctx->useLongFormatNames = TRUE;
    ctx->autoInitializationSequence = FALSE; /* no thread: see below */
    ctx->ClientCapabilities = ds_rdpclip_on_caps;
    ctx->ClientFormatList = ds_rdpclip_on_format_list;
    ctx->ClientFormatListResponse = ds_rdpclip_on_list_response;
    ctx->ClientFormatDataRequest = ds_rdpclip_on_request;
    ctx->ClientFormatDataResponse = ds_rdpclip_on_data;
    c->ctx = ctx;
    /* Open without Start: the channel is read by this session's loop, so
     * its callbacks run on the session's thread. */
    if (ctx->Open(ctx) != CHANNEL_RC_OK || !(ev = ctx->GetEventHandle(ctx)) ||
        ctx->ServerCapabilities(ctx, &caps) != CHANNEL_RC_OK ||
        ctx->MonitorReady(ctx, &ready) != CHANNEL_RC_OK) {
        ds_session_log("cannot open the clipboard channel");
        return -EIO;
    }
    c->fd = GetEventFileDescriptor(ev);
    return 1;
}

int ds_rdpclip_fd(const struct ds_rdpclip *c)
{
    return c->fd;
}

int ds_rdpclip_check(struct ds_rdpclip *c, long long now_ms)
{
    HANDLE ev;
    int i;

    if (!c->ctx || c->fd < 0)
        return 0;
    ev = c->ctx->GetEventHandle(c->ctx);
    /* one message a call; the event stays set while more is there */
    for (i = 0; i < 16 && WaitForSingleObject(ev, 0) == WAIT_OBJECT_0; i++) {
        if (c->ctx->CheckEventHandle(c->ctx) != CHANNEL_RC_OK) {
            ds_session_log("clipboard channel failed: clipboard off");
            c->fd = -1;
            return -EIO;
        }
    }
    if (c->ready && !c->getting && now_ms >= c->next_poll_ms) {
        c->next_poll_ms = now_ms + DS_RDPCLIP_POLL_MS; /* if it fails */
        ds_rdpclip_get(c);
    }
    return 0;
}

int ds_rdpclip_timeout(const struct ds_rdpclip *c, long long now_ms, int max_ms)
{
    long long left;

    if (!c->ctx || c->fd < 0 || !c->ready || c->getting)
        return max_ms;
    left = c->next_poll_ms - now_ms;
    if (left < 0)
        return 0;
    return left < max_ms ? (int)left : max_ms;
}
